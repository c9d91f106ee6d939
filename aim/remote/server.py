"""The ASGI application behind ``aim server`` (filled in by the tracking API)."""
from __future__ import annotations

PROTOCOL_VERSION = 1
API_PREFIX = '/api/remote/v1'


def create_app(repo_root: str, *, tokens: dict[str, str] | None = None):
    from fastapi import FastAPI
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(API_PREFIX + '/hello')
    def hello():
        from aim import __version__
        return {'server': 'aimkit', 'version': __version__, 'protocol': PROTOCOL_VERSION}

    return app
