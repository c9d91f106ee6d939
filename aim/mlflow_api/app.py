"""The ASGI application answering MLflow's REST paths on ``aim server``.

``/api/2.0/mlflow/...`` and ``/ajax-api/2.0/mlflow/...``: the tracking API
(:mod:`aim.mlflow_api.service`); ``/api/2.0/mlflow-artifacts/artifacts/...``: the artifact
proxy that ``mlflow-artifacts:/`` artifact URIs resolve to (:mod:`aim.mlflow_api.artifacts`).
Every error answers MLflow's ``{"error_code", "message"}``.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from aim.mlflow_api.errors import MlflowApiError
from aim.web.asgi import Receive, Scope, Send

PREFIXES = ('/api/2.0/mlflow/', '/ajax-api/2.0/mlflow/')
ARTIFACT_PREFIXES = ('/api/2.0/mlflow-artifacts/', '/ajax-api/2.0/mlflow-artifacts/')
# paths of other MLflow versions and features that aimkit answers "not supported"
OTHER_API_PREFIXES = ('/api/2.1/', '/api/3.0/mlflow/', '/ajax-api/3.0/mlflow/',
                      '/api/4.0/mlflow/')
MAX_BODY = 64 << 20
_log = logging.getLogger('aim.server')

UNSUPPORTED = ('registered-models/', 'model-versions/', 'traces',
               'gateway', 'prompts', 'scorers', 'datasets', 'webhooks', 'assessments')


_SURROGATE_ESCAPE = re.compile(rb'\\u[dD][89a-fA-F]')


def _refuse_lone_surrogates(doc: dict) -> None:
    """JSON escapes can spell half of a UTF-16 pair, which no UTF-8 text (so nothing
    stored) can hold: refused, naming the field."""
    for key, value in doc.items():
        try:
            json.dumps(value, ensure_ascii=False).encode('utf-8')
        except UnicodeEncodeError:
            raise MlflowApiError(f'The field {key!r} holds text that is not valid Unicode (a '
                                 f'lone surrogate escape such as \\ud800).',
                                 'INVALID_PARAMETER_VALUE') from None


# MLflow's endpoint (after .../mlflow/) -> the MlflowService method answering it
ROUTES = {
    'experiments/create': 'create_experiment',
    'experiments/get': 'get_experiment',
    'experiments/get-by-name': 'get_experiment_by_name',
    'experiments/search': 'search_experiments',
    'experiments/list': 'search_experiments',
    'experiments/update': 'update_experiment',
    'experiments/delete': 'delete_experiment',
    'experiments/restore': 'restore_experiment',
    'experiments/set-experiment-tag': 'set_experiment_tag',
    'experiments/delete-experiment-tag': 'delete_experiment_tag',
    'runs/create': 'create_run',
    'runs/get': 'get_run',
    'runs/update': 'update_run',
    'runs/delete': 'delete_run',
    'runs/restore': 'restore_run',
    'runs/search': 'search_runs',
    'runs/log-metric': 'log_metric',
    'runs/log-parameter': 'log_param',
    'runs/log-batch': 'log_batch',
    'runs/log-inputs': 'log_inputs',
    'runs/log-model': 'log_model',
    'runs/outputs': 'log_outputs',
    'runs/set-tag': 'set_tag',
    'runs/delete-tag': 'delete_tag',
    'metrics/get-history': 'metric_history',
}


def is_mlflow_path(path: str) -> bool:
    return path.startswith(PREFIXES + ARTIFACT_PREFIXES + OTHER_API_PREFIXES)


class MlflowApp:
    """MLflow's tracking REST API over the repository at ``repo_root`` (a directory or
    a database URL); artifacts under ``artifacts_root`` (a folder; by default in the
    repository directory)."""

    def __init__(self, repo_root: str, artifacts_root: str | None = None):
        from aim.mlflow_api.artifacts import ArtifactStore
        from aim.mlflow_api.experiments import default_artifacts_root
        self.repo_root = repo_root
        self.artifacts_root = artifacts_root or default_artifacts_root(repo_root)
        self.artifacts = ArtifactStore(self.artifacts_root)
        self.routes: dict[str, str] = dict(ROUTES)
        self._service: Any = None
        self._service_lock = threading.Lock()

    @property
    def service(self):
        """The operations, set up at the first MLflow request: a server that no MLflow
        client talks to makes no experiments file."""
        with self._service_lock:
            if self._service is None:
                from aim.mlflow_api.service import MlflowService
                self._service = MlflowService(self.repo_root)
            return self._service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            return
        path = scope.get('path', '')
        try:
            if path.startswith(ARTIFACT_PREFIXES):
                await self.artifacts.handle(scope, receive, send,
                                            path.split('/mlflow-artifacts/', 1)[1])
                return
            if path.startswith(PREFIXES):
                name = path.split('/mlflow/', 1)[1].strip('/')
            else:
                name = path
            method_name = self.routes.get(name)
            handler: Callable[[dict], dict] | None = None
            if method_name:
                def handler(req, method_name=method_name):
                    return getattr(self.service, method_name)(req)
            elif name == 'logged-models' or name.startswith('logged-models/'):
                parts = [unquote(p) for p in name.split('/')[1:]]
                method = scope.get('method', 'GET')

                def handler(req, parts=parts, method=method):
                    return self.service.models.handle(method, parts, req)
            if handler is None:
                raise _unknown(name, path)
            req = await _request_fields(scope, receive)
            from starlette.concurrency import run_in_threadpool

            def answer(req=req, handler=handler) -> bytes:
                # the work and the JSON of a long answer, off the event loop
                return _dumps(handler(req))
            await _send_payload(send, 200, await run_in_threadpool(answer))
        except MlflowApiError as e:
            await _send_json(send, e.status, e.body())
        except Exception as e:   # one error shape, whatever failed
            from aim.errors import AimError
            if isinstance(e, AimError):
                await _send_json(send, 400, {'error_code': 'INVALID_PARAMETER_VALUE',
                                             'message': str(e)})
                return
            _log.exception('MLflow API request %s failed', path)
            await _send_json(send, 500, {'error_code': 'INTERNAL_ERROR',
                                         'message': f'{type(e).__name__}: {e}'})


def _unknown(name: str, path: str) -> MlflowApiError:
    if name.startswith(UNSUPPORTED) or path.startswith(OTHER_API_PREFIXES):
        return MlflowApiError(
            f'{path} is not supported by aimkit: its MLflow API covers experiments, runs, '
            f'metrics, params, tags, dataset inputs, logged models and artifacts, not the '
            f'model registry or traces. Register models with an MLflow server of its own '
            f'(set_registry_uri), or log them as run artifacts.', 'NOT_IMPLEMENTED')
    return MlflowApiError(f'No MLflow endpoint {path} on this server.', 'ENDPOINT_NOT_FOUND')


def _dumps(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(',', ':')).encode('utf-8')


async def _send_json(send: Send, status: int, body: dict) -> None:
    await _send_payload(send, status, _dumps(body))


async def _send_payload(send: Send, status: int, payload: bytes) -> None:
    await send({'type': 'http.response.start', 'status': status, 'headers': [
        (b'content-type', b'application/json'), (b'content-length', str(len(payload)).encode())]})
    await send({'type': 'http.response.body', 'body': payload})


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message['type'] == 'http.disconnect':
            break
        chunk = message.get('body', b'')
        size += len(chunk)
        if size > limit:
            raise MlflowApiError(f'The request body is over {limit:,} bytes.', 'BAD_REQUEST')
        chunks.append(chunk)
        if not message.get('more_body'):
            break
    return b''.join(chunks)


async def _request_fields(scope: Scope, receive: Receive) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in parse_qsl(scope.get('query_string', b'').decode('latin-1'),
                                keep_blank_values=True):
        if key in fields:
            old = fields[key]
            fields[key] = (old if isinstance(old, list) else [old]) + [value]
        elif key in ('experiment_ids', 'order_by', 'run_ids'):
            fields[key] = [value]
        else:
            fields[key] = value
    if scope.get('method') in ('POST', 'PATCH', 'PUT', 'DELETE'):
        body = await read_body(receive)
        if body.strip():
            try:
                doc = json.loads(body)
            except ValueError as e:
                raise MlflowApiError(f'The request body is not JSON ({e}).',
                                     'MALFORMED_REQUEST') from None
            if not isinstance(doc, dict):
                raise MlflowApiError('The request body must be a JSON object.',
                                     'MALFORMED_REQUEST')
            if _SURROGATE_ESCAPE.search(body):
                _refuse_lone_surrogates(doc)
            fields.update(doc)
    return fields
