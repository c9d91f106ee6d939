"""The artifact proxy: ``mlflow-artifacts:/<experiment>/<run>/artifacts/...`` in a folder.

MLflow's client resolves such a URI to ``/api/2.0/mlflow-artifacts/artifacts/<path>`` on
the tracking server and PUTs (upload), GETs (download; with ``?path=`` on the bare route:
list) and DELETEs files there. Paths are kept inside the folder: absolute paths, ``..``
and NUL bytes are refused.
"""
from __future__ import annotations

import os
import posixpath
import tempfile
from urllib.parse import parse_qsl

from aim.mlflow_api.errors import MlflowApiError, invalid, missing
from aim.web.asgi import Receive, Scope, Send, send_json

CHUNK = 1 << 20


class ArtifactStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _local(self, rel: str) -> str:
        rel = rel.strip('/')
        if '\x00' in rel or '\\' in rel:
            raise invalid(f'Invalid artifact path {rel!r}.')
        parts = [p for p in rel.split('/') if p not in ('', '.')]
        if any(p == '..' for p in parts):
            raise invalid(f"Invalid artifact path {rel!r}: '..' is not allowed.")
        path = os.path.join(self.root, *parts) if parts else self.root
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root + os.sep):
            raise invalid(f'Invalid artifact path {rel!r}: it leaves the artifact store.')
        return path

    async def handle(self, scope: Scope, receive: Receive, send: Send, rest: str) -> None:
        """``rest``: the path after ``/mlflow-artifacts/``."""
        method = scope.get('method', 'GET')
        if rest == 'artifacts' or rest == 'artifacts/':
            if method != 'GET':
                raise MlflowApiError('List artifacts with GET.', 'BAD_REQUEST')
            query = dict(parse_qsl(scope.get('query_string', b'').decode('latin-1')))
            await send_json(send, 200, self.list(query.get('path', '')))
            return
        if rest.startswith('mpu/'):
            raise MlflowApiError('Multipart uploads are not supported by aimkit; unset '
                                 'MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD to upload files whole.',
                                 'NOT_IMPLEMENTED')
        if not rest.startswith('artifacts/'):
            raise MlflowApiError(f'No MLflow artifact endpoint {rest!r} on this server.',
                                 'ENDPOINT_NOT_FOUND')
        rel = rest[len('artifacts/'):]
        if method == 'PUT':
            await self._upload(rel, receive)
            await send_json(send, 200, {})
        elif method == 'GET':
            await self._download(rel, send)
        elif method == 'DELETE':
            self.delete(rel)
            await send_json(send, 200, {})
        else:
            raise MlflowApiError(f'{method} is not an artifact operation.', 'BAD_REQUEST')

    def list(self, rel: str) -> dict:
        path = self._local(rel)
        if os.path.isfile(path):
            return {'files': [{'path': posixpath.basename(rel.rstrip('/')), 'is_dir': False,
                               'file_size': os.path.getsize(path)}]}
        if not os.path.isdir(path):
            return {}
        files = []
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            if entry.is_dir():
                files.append({'path': entry.name, 'is_dir': True})
            elif entry.is_file():
                files.append({'path': entry.name, 'is_dir': False,
                              'file_size': entry.stat().st_size})
        return {'files': files}

    async def _upload(self, rel: str, receive: Receive) -> None:
        path = self._local(rel)
        if path == self.root or os.path.isdir(path):
            raise invalid(f'Invalid artifact path {rel!r}: upload to a file path.')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.upload-')
        try:
            with os.fdopen(fd, 'wb') as f:
                while True:
                    message = await receive()
                    if message['type'] == 'http.disconnect':
                        raise MlflowApiError('The upload was cut short.', 'BAD_REQUEST')
                    f.write(message.get('body', b''))
                    if not message.get('more_body'):
                        break
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    async def _download(self, rel: str, send: Send) -> None:
        path = self._local(rel)
        if not os.path.isfile(path):
            raise missing(f'No artifact {rel!r}.')
        size = os.path.getsize(path)
        await send({'type': 'http.response.start', 'status': 200, 'headers': [
            (b'content-type', b'application/octet-stream'),
            (b'content-length', str(size).encode())]})
        with open(path, 'rb') as f:
            while True:
                chunk = f.read(CHUNK)
                more = len(chunk) == CHUNK
                await send({'type': 'http.response.body', 'body': chunk, 'more_body': more})
                if not more:
                    break

    def delete(self, rel: str) -> None:
        import shutil
        path = self._local(rel)
        if path == self.root:
            raise invalid('Refusing to delete the whole artifact store.')
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)
        else:
            raise missing(f'No artifact {rel!r}.')
