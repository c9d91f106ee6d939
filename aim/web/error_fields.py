"""The API's reading of an :class:`aim.errors.AimError`: HTTP status, type, message, detail.

Kept free of web imports, so the query worker process (``aim.web.query_worker``) reports
errors the same way the server does without loading the web framework.
"""
from __future__ import annotations

from aim.errors import (
    AimError,
    MissingRunError,
    QueryError,
    ReadOnlyRunError,
    RepositoryError,
    RunLockedError,
)


def status_of(exc: AimError) -> int:
    if isinstance(exc, QueryError):
        return 400
    if isinstance(exc, MissingRunError):
        return 404
    if isinstance(exc, (RunLockedError, ReadOnlyRunError)):
        return 409
    if isinstance(exc, RepositoryError):
        return 500
    return 400


def error_fields(exc: AimError) -> dict:
    """``{'status', 'type', 'message', 'detail'}``: plain data, ready for JSON."""
    detail: dict = {}
    if isinstance(exc, QueryError):
        detail = {'position': exc.position, 'hint': exc.hint, 'query': exc.query,
                  'reason': getattr(exc, 'reason', None)}
    run_hash = getattr(exc, 'run_hash', None)
    if run_hash is not None:
        detail['run_hash'] = run_hash
    return {'status': status_of(exc), 'type': type(exc).__name__, 'message': str(exc),
            'detail': detail}
