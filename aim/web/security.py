"""What ``aim up`` does so that other web pages and other machines cannot use it.

One ASGI middleware, in front of everything:

- **Headers on every response**: a strict ``Content-Security-Policy`` (the page is
  same-origin ES modules and needs nothing else; ``/docs`` may load its script from the
  CDN FastAPI uses), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
  ``Referrer-Policy: same-origin``.
- **Bounded request bodies**: a body over ``MAX_BODY_BYTES`` is refused with 413 before the
  endpoint sees it (the endpoints bound counts and lengths inside the body, 422).
- **Access token** (when the server has one; required off loopback): every request carries
  ``Authorization: Bearer TOKEN`` or the ``aim_token`` cookie. Opening any page (not an
  ``/api/`` address) with ``?token=TOKEN`` sets that cookie (HttpOnly, SameSite=Strict)
  and reloads the page without the token in its address. Anything else is answered 401.
- **Writes** (every method but GET / HEAD / OPTIONS) are refused with 403 when the browser
  says they come from another site (``Sec-Fetch-Site``) or another origin (``Origin``), and
  they must carry ``X-Aim-Token`` with the server's write token, which the page receives
  in a ``<meta name="aim-write-token">`` tag and scripts read from ``GET /api/status``
  (``write_token``). Another site's page can neither read that token nor send a custom
  header to the server without a CORS preflight, which this server never grants. A
  request with the access token in its ``Authorization`` header needs no write token:
  browsers never add that header by themselves.
"""
from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qsl, urlencode

from aim.web.api_errors import error_body
from aim.web.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    bearer_token,
    cookie_value,
    request_headers,
    send_json,
)

MAX_BODY_BYTES = 1 << 20
WRITE_TOKEN_HEADER = 'x-aim-token'
AUTH_COOKIE = 'aim_token'
SAFE_METHODS = frozenset({'GET', 'HEAD', 'OPTIONS'})

PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; "
               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# FastAPI's /docs and /redoc pages load their script and styles from this CDN, inline.
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
               "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net "
               "https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com; "
               "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
               "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
               "frame-ancestors 'none'")
DOCS_PATHS = ('/docs', '/redoc')


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _same(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode('utf-8'), expected.encode('utf-8'))


class SecurityMiddleware:
    """See the module docstring. ``auth_token`` None: no access token (loopback)."""

    def __init__(self, app: ASGIApp, write_token: str, auth_token: str | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.write_token = write_token
        self.auth_token = auth_token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        path = scope.get('path', '')
        policy = DOCS_POLICY if path in DOCS_PATHS or path.startswith('/docs/') else PAGE_POLICY

        async def send_with_headers(message: Message) -> None:
            if message['type'] == 'http.response.start':
                headers = [(k, v) for k, v in message.get('headers', [])
                           if k.lower() not in (b'content-security-policy',
                                                b'x-content-type-options')]
                headers += [(b'content-security-policy', policy.encode()),
                            (b'x-content-type-options', b'nosniff'),
                            (b'x-frame-options', b'DENY'),
                            (b'referrer-policy', b'same-origin')]
                message = dict(message, headers=headers)
            await send(message)

        headers = request_headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await self._answer(refusal, send_with_headers)
            return
        method = scope.get('method', 'GET')
        if method not in SAFE_METHODS:
            too_long = self._declared_too_long(headers)
            if too_long:
                await self._answer(too_long, send_with_headers)
                return
            body, over = await self._read_body(receive)
            if over:
                await self._answer(self._too_large(), send_with_headers)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send_with_headers)

    # --- checks -------------------------------------------------------------------------
    def _refusal(self, scope: Scope, headers: dict[str, str]):
        """(status, body, extra headers) of a refusal, or None."""
        method = scope.get('method', 'GET')
        if self.auth_token is not None:
            given = bearer_token(headers)
            if given is None:
                given = cookie_value(headers, AUTH_COOKIE)
            query = dict(parse_qsl(scope.get('query_string', b'').decode('latin-1')))
            # pages only: an API address with the token in it would leave it in logs
            if method == 'GET' and not scope.get('path', '').startswith('/api/') and \
                    'token' in query and _same(query['token'], self.auth_token):
                return self._sign_in(scope, query)
            if not _same(given, self.auth_token):
                return (401, error_body(
                    'Unauthorized', 'This server needs its access token. Open the UI once '
                    'with ?token=YOUR_TOKEN at the end of its address (the browser keeps it), '
                    'or send the header "Authorization: Bearer YOUR_TOKEN"; the token is the '
                    'content of the file given to `aim up --token-file`.'),
                    [(b'www-authenticate', b'Bearer')])
        if method in SAFE_METHODS:
            return None
        site = headers.get('sec-fetch-site')
        if site is not None and site not in ('same-origin', 'none'):
            return (403, error_body(
                'CrossSiteRequest', f'Refused: this change came from another site '
                f'(Sec-Fetch-Site: {site}). Runs can be edited only from the aim UI itself; '
                f'open it at this server\'s address and make the change there.',
                {'sec_fetch_site': site}), [])
        origin = headers.get('origin')
        own = self._own_origin(scope, headers)
        if origin is not None and origin.rstrip('/').lower() != own:
            return (403, error_body(
                'CrossOriginRequest', f'Refused: this change came from a page of another '
                f'origin, {origin}, not from this server ({own}). Runs can be edited only '
                f'from the aim UI itself; open it at {own} and make the change there.',
                {'origin': origin, 'expected': own}), [])
        if self.auth_token is not None and _same(bearer_token(headers), self.auth_token):
            return None
        if not _same(headers.get(WRITE_TOKEN_HEADER), self.write_token):
            return (403, error_body(
                'MissingWriteToken', 'Refused: changes need this server\'s write token in the '
                'X-Aim-Token header. The UI sends it; a script reads it from GET /api/status '
                '("write_token") and sends it with each edit or delete.'), [])
        return None

    @staticmethod
    def _own_origin(scope: Scope, headers: dict[str, str]) -> str:
        scheme = scope.get('scheme', 'http')
        host = headers.get('host', '').lower()
        default = {'http': ':80', 'https': ':443'}.get(scheme)
        if default and host.endswith(default):
            host = host[:-len(default)]
        return f'{scheme}://{host}'

    def _sign_in(self, scope: Scope, query: dict):
        rest = {k: v for k, v in query.items() if k != 'token'}
        location = scope.get('path', '/') + ('?' + urlencode(rest) if rest else '')
        cookie = f'{AUTH_COOKIE}={self.auth_token}; Path=/; HttpOnly; SameSite=Strict'
        if scope.get('scheme') == 'https':
            cookie += '; Secure'
        return (303, None, [(b'location', location.encode('latin-1')),
                            (b'set-cookie', cookie.encode('latin-1'))])

    def _declared_too_long(self, headers: dict[str, str]):
        length = headers.get('content-length')
        if length is None:
            return None
        try:
            size = int(length)
        except ValueError:
            return (400, error_body('InvalidRequest', f'The Content-Length header '
                                    f'{length!r} is not a number.'), [])
        return self._too_large() if size > self.max_body_bytes else None

    def _too_large(self):
        return (413, error_body(
            'RequestTooLarge', f'The request body is over the limit of {self.max_body_bytes} '
            f'bytes. Send fewer runs or shorter texts per request.',
            {'limit_bytes': self.max_body_bytes}), [])

    async def _read_body(self, receive: Receive) -> tuple[list[Message], bool]:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message['type'] != 'http.request':
                return messages, False
            size += len(message.get('body', b''))
            if size > self.max_body_bytes:
                return messages, True
            if not message.get('more_body', False):
                return messages, False

    @staticmethod
    async def _answer(refusal, send: Send) -> None:
        status, body, extra = refusal
        await send_json(send, status, body, extra)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()
    return replayed
