"""``aim up --repo aim://HOST:PORT``: browse the runs of an ``aim server`` from any machine.

``aim up`` serves, on this machine as usual, a reverse proxy to the UI of the server: every
request (method, path, query, body and the headers that describe it) goes on to the
server with ``Authorization: Bearer TOKEN`` from :func:`aim.remote.credentials.settings_for`
and the answer streams back. Standard library ``http.client`` in worker threads; idle
connections to the server are kept for the next request.

What the proxy guards itself, since it adds a token to whatever reaches it:

- the Host header must be one of the names the proxy listens under when that is loopback
  (a DNS-rebinding page cannot use it);
- changes (methods other than GET / HEAD / OPTIONS) coming from another site or origin
  (``Sec-Fetch-Site``, ``Origin``) are refused with 403, as ``aim up`` does; the rest go on
  with those headers removed, and the server checks their write token (``X-Aim-Token``,
  which only a page served through this proxy holds);
- cookies are neither sent to the server nor set by it (the browser's cookies for this
  host belong to every local service).

:func:`probe` checks at start that the server answers, takes the token and serves a UI,
so that ``aim up`` stops at once with one message saying what to do.
"""
from __future__ import annotations

import http.client
import threading
from urllib.parse import urlsplit

import anyio.to_thread

from aim.web.api_errors import error_body
from aim.web.asgi import ASGIApp, Receive, Scope, Send, send_json

MAX_BODY_BYTES = 8 << 20  # the server refuses UI bodies over 1 MiB anyway
CHUNK_BYTES = 64 << 10
TIMEOUT_S = 120.0  # a query may run long; the server bounds it (--query-timeout)
IDLE_CONNECTIONS = 8
SAFE_METHODS = frozenset({'GET', 'HEAD', 'OPTIONS'})
# Not forwarded to the server: hop-by-hop headers, what the proxy sets itself, and what
# the browser says about this machine's pages (the proxy checked it).
REQUEST_DROP = frozenset({
    'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
    'transfer-encoding', 'upgrade', 'host', 'authorization', 'cookie', 'origin', 'referer',
    'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'sec-fetch-user', 'content-length',
    'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'})
RESPONSE_DROP = frozenset({'connection', 'keep-alive', 'transfer-encoding', 'trailer',
                           'upgrade', 'set-cookie', 'proxy-authenticate'})


class ProxyStartError(Exception):
    """The server cannot be browsed; the message says why and what to do."""


def _connection(settings, timeout: float = TIMEOUT_S) -> http.client.HTTPConnection:
    if settings.tls:
        return http.client.HTTPSConnection(settings.host, settings.port, timeout=timeout,
                                           context=settings.ssl_context)
    return http.client.HTTPConnection(settings.host, settings.port, timeout=timeout)


def _headers_for_server(settings) -> dict[str, str]:
    headers = {'Host': settings.netloc}
    if settings.token:
        headers['Authorization'] = f'Bearer {settings.token}'
    return headers


def probe(settings, timeout: float = 10.0) -> None:
    """Raise :class:`ProxyStartError` unless the server of ``settings`` answers the hello of
    the tracking API with the token and serves its UI."""
    def get(path: str) -> tuple[int, bytes]:
        conn = _connection(settings, timeout)
        try:
            conn.request('GET', path, headers=_headers_for_server(settings))
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    url = settings.url
    try:
        status, body = get('/api/remote/v1/hello')
        if status == 200:
            status, body = get('/api/status')
            if status == 404:
                raise ProxyStartError(
                    f'The aim server at {url} serves no UI (it was started with --no-ui). '
                    f'Restart it without --no-ui to browse its runs.')
            if status == 200:
                return
    except ProxyStartError:
        raise
    except (OSError, http.client.HTTPException) as e:
        import ssl
        if isinstance(e, ssl.SSLCertVerificationError):
            raise ProxyStartError(
                f'The certificate of the aim server at {url} cannot be verified '
                f'({e.verify_message}). Give the certificate authority that signed it with '
                f'AIM_REMOTE_CA_BUNDLE=/path/ca.pem or "ca_bundle = /path/ca.pem" in its '
                f'section of the credentials file.') from None
        if isinstance(e, ssl.SSLError):
            raise ProxyStartError(
                f'TLS with the aim server at {url} failed ({e}). If the server does not serve '
                f'HTTPS, use aim://, not aims://, and no CA bundle.') from None
        why = getattr(e, 'strerror', None) or str(e) or type(e).__name__
        raise ProxyStartError(
            f'Cannot reach the aim server at {url} ({why}). Check that `aim server` runs '
            f'there and listens on that address (its --host and --port), and that no '
            f'firewall is in between.') from None
    if status == 401:
        what = 'refused the token' if settings.token else 'needs an access token'
        raise ProxyStartError(
            f'The aim server at {url} {what} (401). Set AIM_REMOTE_TOKEN to one of the '
            f'server\'s tokens (its --token-file), or write it as "token = ..." under '
            f'[{settings.netloc}] in the credentials file (AIM_CREDENTIALS_FILE, default '
            f'~/.config/aim/credentials).')
    detail = body[:200].decode('utf-8', 'replace')
    raise ProxyStartError(f'{url} answered {status} where an aim server answers 200 '
                          f'({detail!r}). Is it an aim server (`aim server`)?')


class RemoteProxy:
    """ASGI app forwarding every HTTP request to the server of ``settings``."""

    def __init__(self, settings, allowed_hosts: list[str] | None = None):
        self.settings = settings
        self.allowed_hosts = [h.lower() for h in allowed_hosts] if allowed_hosts else None
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] == 'lifespan':
            while True:
                message = await receive()
                if message['type'] == 'lifespan.startup':
                    await send({'type': 'lifespan.startup.complete'})
                elif message['type'] == 'lifespan.shutdown':
                    self.close()
                    await send({'type': 'lifespan.shutdown.complete'})
                    return
        if scope['type'] != 'http':
            await receive()
            await send({'type': 'websocket.close', 'code': 1003})
            return
        headers = [(k.decode('latin-1').lower(), v.decode('latin-1'))
                   for k, v in scope.get('headers') or []]
        refusal = self._refusal(scope, dict(headers))
        if refusal is not None:
            await send_json(send, *refusal)
            return
        body, too_large = await _read_body(receive)
        if too_large:
            await send_json(send, 413, error_body(
                'RequestTooLarge', f'The request body is over {MAX_BODY_BYTES} bytes.'))
            return
        method = scope['method']
        target = scope.get('raw_path') or scope['path'].encode('utf-8')
        target_text = target.decode('latin-1')
        if scope.get('query_string'):
            target_text += '?' + scope['query_string'].decode('latin-1')
        forwarded = [(k, v) for k, v in headers if k not in REQUEST_DROP]
        forwarded += list(_headers_for_server(self.settings).items())
        if body or method not in SAFE_METHODS:
            forwarded.append(('Content-Length', str(len(body))))
        try:
            conn, response = await anyio.to_thread.run_sync(
                self._exchange, method, target_text, body, forwarded)
        except (OSError, http.client.HTTPException) as e:
            why = getattr(e, 'strerror', None) or str(e) or type(e).__name__
            await send_json(send, 502, error_body(
                'RemoteUnavailable', f'The aim server at {self.settings.url} did not answer '
                f'({why}). Check that it still runs, then reload the page.',
                {'server': self.settings.url}))
            return
        complete = False
        try:
            await send({'type': 'http.response.start', 'status': response.status,
                        'headers': [(k.lower().encode('latin-1'), v.encode('latin-1'))
                                    for k, v in response.getheaders()
                                    if k.lower() not in RESPONSE_DROP]})
            while True:
                chunk = await anyio.to_thread.run_sync(response.read1, CHUNK_BYTES)
                if not chunk:
                    break
                await send({'type': 'http.response.body', 'body': chunk, 'more_body': True})
            await send({'type': 'http.response.body', 'body': b''})
            complete = True
        finally:
            self._release(conn, response, complete)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, dict] | None:
        if self.allowed_hosts is not None:
            host = headers.get('host', '')
            name = urlsplit('//' + host).hostname or ''
            if name.lower() not in [h.strip('[]') for h in self.allowed_hosts]:
                names = ', '.join(self.allowed_hosts)
                return 421, error_body(
                    'UnknownHost', f'This proxy answers requests for {names} only, not for '
                    f'{host!r}. Open it at http://127.0.0.1:PORT/.')
        if scope['method'] in SAFE_METHODS:
            return None
        site = headers.get('sec-fetch-site')
        if site is not None and site not in ('same-origin', 'none'):
            return 403, error_body(
                'CrossSiteRequest', f'Refused: this change came from another site '
                f'(Sec-Fetch-Site: {site}). Make it in the aim UI itself.')
        origin = headers.get('origin')
        if origin is not None:
            own = f'{scope.get("scheme", "http")}://{headers.get("host", "")}'.lower()
            if origin.rstrip('/').lower() != own:
                return 403, error_body(
                    'CrossOriginRequest', f'Refused: this change came from a page of '
                    f'{origin}, not from this UI ({own}). Make it in the aim UI itself.')
        return None

    def _exchange(self, method: str, target: str, body: bytes, headers: list):
        """Send one request; a kept connection the server closed meanwhile is replaced once
        (for reads only: a change might have reached the server)."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            try:
                return conn, self._send(conn, method, target, body, headers)
            except (OSError, http.client.HTTPException):
                conn.close()
                if method not in SAFE_METHODS:
                    raise
        conn = _connection(self.settings)
        try:
            return conn, self._send(conn, method, target, body, headers)
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _send(conn, method: str, target: str, body: bytes, headers: list):
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for key, value in headers:
            conn.putheader(key, value)
        conn.endheaders(body or None)
        return conn.getresponse()

    def _release(self, conn, response, complete: bool) -> None:
        if not complete or response.will_close or not response.isclosed():
            conn.close()
            return
        with self._lock:
            if len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message['type'] != 'http.request':
            return b''.join(parts), False
        chunk = message.get('body', b'')
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b'', True
        parts.append(chunk)
        if not message.get('more_body', False):
            return b''.join(parts), False


def serve_remote(url: str, *, host: str = '127.0.0.1', port: int = 43800,
                 log_level: str = 'warning', ssl_keyfile: str | None = None,
                 ssl_certfile: str | None = None, uds: str | None = None,
                 auth_token: str | None = None) -> None:
    """``aim up --repo aim://...``: probe the server, then serve the proxy until SIGTERM /
    SIGINT. Raises :class:`ProxyStartError` (or ValueError for a bad URL or credentials
    file, OSError for a busy port) before serving."""
    import uvicorn

    from aim.remote.credentials import settings_for
    from aim.web.server import (
        GRACEFUL_SHUTDOWN_S,
        allowed_hosts_for,
        bind_socket,
        bind_unix_socket,
    )
    settings = settings_for(url)
    probe(settings)
    scheme = 'https' if ssl_certfile else 'http'
    if uds:
        sock = bind_unix_socket(uds)
        shown = f'{scheme}+unix://{uds}/'
        allowed = None
    else:
        sock = bind_socket(host, port)
        shown_host = f'[{host}]' if ':' in host else host
        shown = f'{scheme}://{shown_host}:{sock.getsockname()[1]}/'
        allowed = allowed_hosts_for(host)
    proxy = RemoteProxy(settings, allowed_hosts=allowed)
    app: ASGIApp = proxy
    if auth_token:
        from aim.remote.auth import BearerAuth
        app = BearerAuth(proxy, {'ui': auth_token}, browser_sign_in=True)
    print(f'Aim UI is running at {shown} (the runs of the aim server {settings.url})',
          flush=True)
    if auth_token:
        print(f'Access token required: open {shown}?token=<the token in the --token-file> '
              f'once in the browser.', flush=True)
    config = uvicorn.Config(app, log_level=log_level, access_log=False,
                            ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        proxy.close()
