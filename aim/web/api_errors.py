"""One error shape for the whole HTTP API.

Every failure comes back as::

    {"error": {"type": "QuerySyntaxError", "message": "...", "detail": {...}}}

with an HTTP status that matches the cause. Query errors carry ``position`` (0-based offset
into the query text), ``hint`` and ``query`` in ``detail`` so the query bar can point at the
mistake.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aim.errors import AimError
from aim.web.error_fields import error_fields

log = logging.getLogger('aim.web')


class ApiError(Exception):
    """An error the API reports on purpose: a status, a type name, a message, details."""

    def __init__(self, status: int, type_: str, message: str, **detail):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.detail = detail


def error_body(type_: str, message: str, detail: dict | None = None) -> dict:
    return {'error': {'type': type_, 'message': message, 'detail': detail or {}}}


def aim_error_response(exc: AimError) -> JSONResponse:
    fields = error_fields(exc)
    return JSONResponse(error_body(fields['type'], fields['message'], fields['detail']),
                        status_code=fields['status'])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(error_body(exc.type, exc.message, exc.detail),
                            status_code=exc.status)

    @app.exception_handler(AimError)
    async def _aim_error(request: Request, exc: AimError):
        return aim_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        problems = [{'where': '.'.join(str(p) for p in e.get('loc', ())), 'problem': e.get('msg')}
                    for e in exc.errors()]
        text = '; '.join(f"{p['where']}: {p['problem']}" for p in problems)
        return JSONResponse(
            error_body('InvalidRequest', f'The request is not valid: {text}. '
                       f'See /docs for the parameters this endpoint takes.',
                       {'problems': problems}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else 'HTTP error'
        if exc.status_code == 404:
            message = f'Nothing at {request.url.path}. The API is listed at /docs.'
        return JSONResponse(error_body('HTTPError', message), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception('unexpected error serving %s', request.url.path)
        return JSONResponse(
            error_body('InternalError', f'The server failed on {request.url.path}: '
                       f'{type(exc).__name__}: {exc}. This is a bug; please report it '
                       f'with the server log.'), status_code=500)


def install_host_check(app: FastAPI, allowed_hosts: list[str]) -> None:
    """Answer 400 (in the one error shape) to requests for a Host not in the list."""
    allowed = {h.lower() for h in allowed_hosts}

    @app.middleware('http')
    async def _check_host(request: Request, call_next):
        host = (request.headers.get('host') or '').lower()
        name = host.rsplit(':', 1)[0] if not host.endswith(']') else host
        if name not in allowed:
            return JSONResponse(error_body(
                'InvalidHost', f'This server answers only requests for '
                f'{", ".join(sorted(allowed))}; open the UI through one of those names '
                f'(or start `aim up --host` with the name you use).'), status_code=400)
        return await call_next(request)
