"""MLflow's error answer: ``{"error_code": "...", "message": "..."}`` with its HTTP status."""
from __future__ import annotations

# MLflow's error codes and the HTTP status its server answers each with
STATUS = {
    'INVALID_PARAMETER_VALUE': 400,
    'BAD_REQUEST': 400,
    'MALFORMED_REQUEST': 400,
    'RESOURCE_ALREADY_EXISTS': 400,
    'INVALID_STATE': 400,
    'RESOURCE_DOES_NOT_EXIST': 404,
    'ENDPOINT_NOT_FOUND': 404,
    'PERMISSION_DENIED': 403,
    'INTERNAL_ERROR': 500,
    'NOT_IMPLEMENTED': 501,
}


class MlflowApiError(Exception):
    """An answer in MLflow's error format; ``code`` is one of MLflow's error codes."""

    def __init__(self, message: str, code: str = 'INVALID_PARAMETER_VALUE'):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)

    def body(self) -> dict:
        return {'error_code': self.code, 'message': self.message}


def invalid(message: str) -> MlflowApiError:
    return MlflowApiError(message, 'INVALID_PARAMETER_VALUE')


def missing(message: str) -> MlflowApiError:
    return MlflowApiError(message, 'RESOURCE_DOES_NOT_EXIST')
