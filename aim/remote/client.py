"""The HTTP client of an ``aim server``: stdlib ``http.client``, one keep-alive connection
per thread, the token and TLS settings of aim/remote/credentials.py.

Every failure becomes one :class:`aim.errors.RemoteError` that names the server and what
to do; an error the server raised on purpose (no such run, a bad query, a run locked by
another writer) comes back as the same class the local repository raises.
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import ssl
import threading
from typing import Any
from urllib.parse import quote, urlencode

from aim.errors import (
    AimError,
    InputError,
    MissingRunError,
    ReadOnlyRunError,
    RemoteAuthError,
    RemoteConnectionError,
    RemoteError,
    RepositoryError,
    RunError,
    RunLockedError,
)

API = '/api/remote/v1'
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
# a batch is applied in well under a second; a server silent this long is as good as gone
BATCH_TIMEOUT_S = 20.0
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


def _error_classes() -> dict[str, Any]:
    from aim.ql.errors import QueryLimitError, QuerySyntaxError, QueryTypeError, UnsafeQueryError
    from aim.remote.ingest import BatchRefused
    classes: list[Any] = [MissingRunError, RunLockedError, ReadOnlyRunError, RunError,
                           InputError, RepositoryError, QuerySyntaxError, UnsafeQueryError,
                           QueryLimitError, QueryTypeError, BatchRefused]
    return {c.__name__: c for c in classes}


class RemoteClient:
    def __init__(self, url: str):
        from aim.remote.credentials import settings_for
        try:
            self.settings = settings_for(url)
        except ValueError as e:
            raise RemoteError(str(e), url) from None
        self.url = self.settings.url
        self._local = threading.local()

    # connections ---------------------------------------------------------------------------
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            s = self.settings
            if s.tls:
                conn = http.client.HTTPSConnection(s.host, s.port, timeout=CONNECT_TIMEOUT_S,
                                                   context=s.ssl_context)
            else:
                conn = http.client.HTTPConnection(s.host, s.port, timeout=CONNECT_TIMEOUT_S)
            self._local.conn = conn
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, 'conn', None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def close(self) -> None:
        self._drop()

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = 'application/json', timeout: float = READ_TIMEOUT_S,
                ) -> tuple[int, dict, bytes]:
        answer = self._request(method, path, body, content_type, timeout)
        if answer[0] in (401, 403) and self._reload_token():
            answer = self._request(method, path, body, content_type, timeout)
        return answer

    def _reload_token(self) -> bool:
        """Re-read the token once the server refused it: the client lives as long as its
        pooled Repo, and a user who set AIM_REMOTE_TOKEN (or wrote the credentials file)
        after a refusal retries in the same process."""
        from aim.remote.credentials import settings_for
        try:
            fresh = settings_for(self.url)
        except ValueError:
            return False
        if fresh.token == self.settings.token:
            return False
        self.settings = dataclasses.replace(self.settings, token=fresh.token)
        return True

    def _request(self, method: str, path: str, body: bytes | None, content_type: str,
                 timeout: float) -> tuple[int, dict, bytes]:
        headers = {'Content-Type': content_type, 'Accept': 'application/json'}
        if self.settings.token:
            headers['Authorization'] = f'Bearer {self.settings.token}'
        for attempt in range(2):
            conn = self._connection(timeout)
            fresh = conn.sock is None
            try:
                conn.request(method, API + path, body=body, headers=headers)
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                resp = conn.getresponse()
                data = resp.read()
            except ssl.SSLCertVerificationError as e:
                self._drop()
                raise RemoteConnectionError(
                    f'The TLS certificate of {self.url} is not trusted ({e.verify_message}). '
                    f'Point AIM_REMOTE_CA_BUNDLE (or ca_bundle in the credentials file) at the '
                    f'CA certificate that signed it.', self.url) from None
            except _NETWORK_ERRORS as e:
                self._drop()
                # a kept-alive connection the server closed meanwhile: one fresh try
                if attempt == 0 and not fresh and not isinstance(e, socket.timeout):
                    continue
                raise RemoteConnectionError(
                    f'Cannot reach the aim server at {self.url} ({_describe(e)}). Check that '
                    f'`aim server` runs there and that the host and port are right; tracked '
                    f'points wait in the local spool meanwhile.', self.url) from None
            if resp.getheader('Connection', '').lower() == 'close':
                self._drop()
            return resp.status, dict(resp.getheaders()), data
        raise AssertionError('unreachable')

    def call(self, method: str, path: str, payload: Any = None, *,
             timeout: float = READ_TIMEOUT_S, raw: bool = False) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, headers, data = self.request(method, path, body, timeout=timeout)
        if status >= 400:
            raise self._error(status, data)
        if raw:
            return data
        return json.loads(data) if data else None

    def _error(self, status: int, data: bytes) -> AimError:
        try:
            doc = json.loads(data)
        except ValueError:
            doc = {'detail': data[:300].decode('utf-8', 'replace')}
        detail = doc.get('detail') if isinstance(doc, dict) else str(doc)
        if not isinstance(detail, str):
            detail = json.dumps(detail)[:1000]
        if status == 401 or status == 403:
            from aim.remote.credentials import credentials_path
            where, _ = credentials_path()
            return RemoteAuthError(
                f'The aim server at {self.url} refused the request: {detail} (aimkit reads the '
                f'token from AIM_REMOTE_TOKEN, else from {where}, section '
                f'[{self.settings.netloc}].)', self.url, status)
        kind = doc.get('error') if isinstance(doc, dict) else None
        cls = _error_classes().get(kind or '')
        if cls is not None:
            if issubclass(cls, RunError):
                return cls(detail, doc.get('run_hash'))
            if cls.__module__ == 'aim.ql.errors':
                return cls(detail, doc.get('position'), doc.get('hint'), doc.get('query'))
            try:
                return cls(detail)
            except TypeError:
                pass
        return RemoteError(f'The aim server at {self.url} answered {status}: {detail}',
                           self.url, status)

    # the tracking protocol ---------------------------------------------------------------
    def hello(self) -> dict:
        from aim.remote.protocol import PROTOCOL_VERSION
        info = self.call('GET', '/hello', timeout=CONNECT_TIMEOUT_S)
        if not isinstance(info, dict) or info.get('server') != 'aimkit':
            raise RemoteError(f'{self.url} is not an aimkit server (it answered {info!r:.100})',
                              self.url)
        if info.get('protocol') != PROTOCOL_VERSION:
            raise RemoteError(f'The aim server at {self.url} speaks protocol '
                              f'{info.get("protocol")}, this aimkit speaks {PROTOCOL_VERSION}; '
                              f'install the same aimkit version on both sides.', self.url)
        return info

    def send_batch(self, stream: str, body: bytes) -> dict:
        from aim.remote.protocol import MEDIA_TYPE
        status, _, data = self.request('POST', f'/streams/{quote(stream)}/batch', body,
                                       content_type=MEDIA_TYPE, timeout=BATCH_TIMEOUT_S)
        if status >= 400:
            raise self._error(status, data)
        return json.loads(data)

    def stream_mark(self, stream: str) -> dict:
        return self.call('GET', f'/streams/{quote(stream)}')

    # reads ---------------------------------------------------------------------------------
    def get(self, path: str, **params) -> Any:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return self.call('GET', path + (f'?{query}' if query else ''))


def _describe(e: BaseException) -> str:
    if isinstance(e, socket.timeout):
        return 'timed out'
    if isinstance(e, ConnectionRefusedError):
        return 'connection refused'
    text = str(e) or type(e).__name__
    return text
