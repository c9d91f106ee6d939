"""The application ``aim server`` serves: the tracking API plus the UI of the same repository.

- ``/api/remote/...`` goes to the tracking API (:func:`aim.remote.server.create_app`),
  whatever the UI has: its routes win. It is for programs: with tokens it takes only
  ``Authorization: Bearer``; a request a browser marks as coming from a page (``Origin``,
  or ``Sec-Fetch-Site`` other than ``none``) is refused, so that a web page cannot write
  runs into a server without tokens on this machine.
- Everything else goes to the ``aim up`` UI (:func:`aim.web.app.create_app`) with its own
  query worker pool, unless ``ui=False`` (``--no-ui``). With tokens the UI takes the bearer
  header or the ``aim_token`` cookie that opening a page once with ``?token=SECRET`` sets.

:func:`app_from_environment` builds the same application in each worker process of
``aim server --workers N`` from ``__AIM_SERVER_*`` variables the command sets.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable

from aim.remote.auth import BearerAuth, load_tokens
from aim.web.asgi import ASGIApp, Receive, Scope, Send, send_json

API_ROOT = '/api/remote'
# MLflow's REST API (aim/mlflow_api): its tracking, artifact and other-version paths
MLFLOW_ROOTS = ('/api/2.0/mlflow', '/ajax-api/2.0/mlflow', '/api/2.1/', '/api/3.0/mlflow',
                '/ajax-api/3.0/mlflow', '/api/4.0/mlflow')
DEFAULT_QUERY_TIMEOUT_S = 10.0
DEFAULT_QUERY_WORKERS = 2

# What ``aim server`` hands its worker processes (no secrets: they read the token file).
ENV_REPO = '__AIM_SERVER_REPO'
ENV_TOKEN_FILE = '__AIM_SERVER_TOKEN_FILE'
ENV_UI = '__AIM_SERVER_UI'
ENV_QUERY_TIMEOUT = '__AIM_SERVER_QUERY_TIMEOUT_S'
ENV_QUERY_WORKERS = '__AIM_SERVER_QUERY_WORKERS'
ENV_WRITE_TOKEN = '__AIM_SERVER_WRITE_TOKEN'
ENV_ALLOWED_HOSTS = '__AIM_SERVER_ALLOWED_HOSTS'
ENV_LOG_LEVEL = '__AIM_SERVER_LOG_LEVEL'
ENV_ARTIFACTS = '__AIM_SERVER_ARTIFACTS_DESTINATION'


class ServerApp:
    """Sends ``/api/remote`` to ``api`` and the rest to ``ui`` (404 without one)."""

    def __init__(self, api: ASGIApp, ui: ASGIApp | None, *,
                 on_startup: list[Callable[[], None]] | None = None,
                 on_shutdown: list[Callable[[], None]] | None = None,
                 mlflow: ASGIApp | None = None):
        self.api = api
        self.ui = ui
        self.mlflow = mlflow
        self.on_startup = list(on_startup or [])
        self.on_shutdown = list(on_shutdown or [])
        self._closed = False

    def close(self) -> None:
        """Stop what the UI runs beside the server (its query workers); idempotent."""
        if self._closed:
            return
        self._closed = True
        for stop in self.on_shutdown:
            stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] == 'lifespan':
            await self._lifespan(scope, receive, send)
            return
        path = scope.get('path', '')
        is_mlflow = self.mlflow is not None and path.startswith(MLFLOW_ROOTS)
        if is_mlflow or path == API_ROOT or path.startswith(API_ROOT + '/'):
            if scope['type'] == 'http' and _from_a_page(scope):
                await send_json(send, 403, {'detail': 'The tracking API takes requests from '
                                        'programs only, not from web pages (this one carried '
                                        'Origin or Sec-Fetch-Site). Browse runs in the UI at '
                                        '/ instead.'})
                return
            await (self.mlflow if is_mlflow else self.api)(scope, receive, send)  # type: ignore[misc]
        elif self.ui is not None:
            await self.ui(scope, receive, send)
        elif scope['type'] == 'http':
            await send_json(send, 404, {'detail': f'This aim server runs with --no-ui: it serves '
                                    f'only the tracking API under {API_ROOT}/. Restart it '
                                    f'without --no-ui to browse runs, or run `aim up` on a '
                                    f'machine with the repository.'})
        else:
            await receive()
            await send({'type': 'websocket.close', 'code': 1000})

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The tracking API gets the lifespan events; the UI's start and stop run beside."""
        async def hooked() -> dict:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                for start in self.on_startup:
                    start()
            elif message['type'] == 'lifespan.shutdown':
                self.close()
            return dict(message)
        await self.api(scope, hooked, send)


def _from_a_page(scope: Scope) -> bool:
    for key, value in scope.get('headers') or []:
        key = key.lower()
        if key == b'origin' or (key == b'sec-fetch-site' and value.lower() != b'none'):
            return True
    return False


def build_app(repo_root: str, *, tokens: dict[str, str] | None, ui: bool = True,
              query_timeout_s: float = DEFAULT_QUERY_TIMEOUT_S,
              query_workers: int = DEFAULT_QUERY_WORKERS, write_token: str | None = None,
              allowed_hosts: list[str] | None = None,
              artifacts_destination: str | None = None) -> ServerApp:
    """The application of ``aim server`` for the repository at ``repo_root``.
    ``write_token``: what the UI's edits must carry (give every worker process the same
    one, or a page from one worker cannot edit through another); ``allowed_hosts``: the
    Host names the UI answers (see :func:`aim.web.server.allowed_hosts_for`);
    ``artifacts_destination``: the folder of MLflow artifacts (docs/mlflow.md)."""
    from aim.mlflow_api import MlflowApp
    from aim.remote.server import create_app as create_tracking_app
    api: ASGIApp = create_tracking_app(repo_root, tokens=tokens)
    mlflow: ASGIApp = MlflowApp(repo_root, artifacts_destination)
    if tokens:
        api = BearerAuth(api, tokens)
        mlflow = BearerAuth(mlflow, tokens)
    if not ui:
        return ServerApp(api, None, mlflow=mlflow)

    from aim.sdk.repo import Repo
    from aim.web.app import create_app as create_ui_app
    from aim.web.query_pool import QueryWorkers
    queries = QueryWorkers(repo_root, size=query_workers, timeout_s=query_timeout_s)
    ui_app = create_ui_app(Repo.from_path(repo_root), queries=queries,
                           write_token=write_token, allowed_hosts=allowed_hosts)

    def warm() -> None:
        ui_app.state.params_summary.warm_in_background()
        threading.Thread(target=queries.warm, name='aim-query-warm', daemon=True).start()

    gated: ASGIApp = BearerAuth(ui_app, tokens, browser_sign_in=True) if tokens else ui_app
    return ServerApp(api, gated, on_startup=[warm], on_shutdown=[queries.close],
                     mlflow=mlflow)


def app_from_environment() -> ServerApp:
    """uvicorn's factory in each worker process of ``aim server --workers N``."""
    import logging
    level = os.environ.get(ENV_LOG_LEVEL, 'warning')
    configure_logging(level)
    token_file = os.environ.get(ENV_TOKEN_FILE)
    # the command checked the file and its permissions already; say it once, not per worker
    tokens = load_tokens(token_file, check_permissions=False) if token_file else None
    hosts = os.environ.get(ENV_ALLOWED_HOSTS)
    logging.getLogger('aim.server').debug('worker %d starts', os.getpid())
    return build_app(os.environ[ENV_REPO], tokens=tokens,
                     ui=os.environ.get(ENV_UI, '1') == '1',
                     query_timeout_s=float(os.environ.get(ENV_QUERY_TIMEOUT,
                                                          DEFAULT_QUERY_TIMEOUT_S)),
                     query_workers=int(os.environ.get(ENV_QUERY_WORKERS,
                                                      DEFAULT_QUERY_WORKERS)),
                     write_token=os.environ.get(ENV_WRITE_TOKEN) or None,
                     allowed_hosts=hosts.split(',') if hosts else None,
                     artifacts_destination=os.environ.get(ENV_ARTIFACTS) or None)


def configure_logging(log_level: str) -> None:
    """``aim.server`` messages (token first use, warnings) to stderr: at info level unless
    ``--log-level`` is error or critical, so that who connects is on record."""
    import logging
    import sys
    logger = logging.getLogger('aim.server')
    wanted = logging.DEBUG if log_level == 'debug' else \
        logging.INFO if log_level in ('info', 'warning') else logging.getLevelName(
            log_level.upper())
    logger.setLevel(wanted)
    if not any(getattr(h, '_aim_server', False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter('%(levelname)s:     %(message)s'))
        handler._aim_server = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
