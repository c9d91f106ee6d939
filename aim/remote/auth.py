"""Access tokens of ``aim server``: the token file and the ASGI middleware that checks them.

Token file (``aim server --token-file PATH``), one token per line::

    # comments and blank lines are ignored
    alice:Zq3v...at-least-16-characters
    ci-bot:8sXk...another-secret
    Hj2k...a-bare-secret            <- named token-1 (then token-2, ...)

- ``NAME:SECRET`` (split at the first ``:``) or a bare ``SECRET``; bare secrets are named
  ``token-1``, ``token-2``, ... in the order they appear.
- A secret is one word of at least 16 characters; names match ``[A-Za-z0-9_.@-]{1,64}``;
  names and secrets are unique.
- A bad file raises ``ValueError`` naming the file, the line and what is wrong; the secret
  itself is never part of a message.
- Permissions: a file that other users can read or write is refused (``chmod 600``), as
  ssh refuses such keys: anyone on the machine could take a token from it. A file the
  group can read is accepted with a warning on the ``aim.server`` logger.

:class:`BearerAuth` lets a request through only with ``Authorization: Bearer SECRET`` of
one of the tokens and records the token's name in ``scope['state']['aim_token_name']``.
With ``browser_sign_in=True`` (the UI pages, which a browser cannot give a header) it also
takes the ``aim_token`` cookie, which opening a page with ``?token=SECRET`` sets, the way
``aim up --token-file`` does (see :mod:`aim.web.security`).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
from urllib.parse import parse_qsl, urlencode

from aim.web.asgi import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    bearer_token,
    cookie_value,
    json_response,
    request_headers,
)

logger = logging.getLogger('aim.server')

MIN_SECRET_LENGTH = 16
TOKEN_NAME = re.compile(r'[A-Za-z0-9_.@-]{1,64}\Z')
AUTH_COOKIE = 'aim_token'  # the cookie aim up's UI uses too
STATE_KEY = 'aim_token_name'
MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def load_tokens(path: str, *, check_permissions: bool = True) -> dict[str, str]:
    """The tokens of the file at ``path``, name -> secret (see the module docstring)."""
    try:
        with open(path, encoding='utf-8') as f:
            if check_permissions:
                _check_permissions(path, os.fstat(f.fileno()).st_mode)
            text = f.read()
    except OSError as e:
        raise ValueError(f'Cannot read the token file {path} ({e.strerror}). Point '
                         f'--token-file at a file with one token per line.') from None
    except UnicodeDecodeError:
        raise ValueError(f'The token file {path} is not UTF-8 text; write one token per '
                         f'line, NAME:SECRET or SECRET.') from None
    tokens: dict[str, str] = {}
    lines_of: dict[str, int] = {}
    secrets_seen: dict[str, int] = {}
    bare = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        where = f'{path}, line {number}'
        if ':' in line:
            name, _, secret = (part.strip() for part in line.partition(':'))
            if not TOKEN_NAME.match(name):
                raise ValueError(f'{where}: the name before ":" must be 1 to 64 letters, '
                                 f'digits or _ . @ - (write NAME:SECRET, or a bare SECRET).')
        else:
            bare += 1
            name, secret = f'token-{bare}', line
        if not secret or any(c.isspace() for c in secret):
            raise ValueError(f'{where}: the secret must be one word without spaces. Make one '
                             f'with: {MAKE_ONE}')
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f'{where}: the secret has {len(secret)} characters; at least '
                             f'{MIN_SECRET_LENGTH} are needed. Make one with: {MAKE_ONE}')
        if name in tokens:
            raise ValueError(f'{where}: the name {name!r} is taken by line {lines_of[name]} '
                             f'already; give each token its own name.')
        if secret in secrets_seen:
            raise ValueError(f'{where}: this secret is the one of line {secrets_seen[secret]} '
                             f'too; each token needs its own secret.')
        tokens[name] = secret
        lines_of[name] = number
        secrets_seen[secret] = number
    if not tokens:
        raise ValueError(f'The token file {path} holds no token. Write one per line, '
                         f'NAME:SECRET or SECRET; make a secret with: {MAKE_ONE}')
    return tokens


def _check_permissions(path: str, mode: int) -> None:
    if os.name != 'posix':
        return
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ValueError(f'The token file {path} can be read or written by other users of '
                         f'this machine (mode {stat.filemode(mode)}), who could take its '
                         f'tokens. Make it yours only: chmod 600 {path}')
    if mode & (stat.S_IRGRP | stat.S_IWGRP):
        logger.warning('The token file %s can be read by its group (mode %s); consider '
                       'chmod 600 %s.', path, stat.filemode(mode), path)


def _digest(secret: str) -> bytes:
    # Comparing digests of one length hides the length of the secrets too.
    return hashlib.sha256(secret.encode('utf-8')).digest()


class BearerAuth:
    """ASGI middleware: every HTTP and websocket request must carry one of ``tokens``
    (name -> secret); others are answered 401 (see the module docstring)."""

    def __init__(self, app: ASGIApp, tokens: dict[str, str], *,
                 browser_sign_in: bool = False):
        if not tokens:
            raise ValueError('BearerAuth needs at least one token.')
        self.app = app
        self.browser_sign_in = browser_sign_in
        self._digests = [(name, _digest(secret)) for name, secret in tokens.items()]
        self._used: set[str] = set()

    def token_name(self, given: str | None) -> str | None:
        """The name of the token whose secret is ``given``, or None. Every token is
        compared, so the time taken does not tell which one matched."""
        if not given:
            return None
        digest = _digest(given)
        found = None
        for name, expected in self._digests:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] not in ('http', 'websocket'):
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        given = bearer_token(headers) or None
        if given is None and self.browser_sign_in:
            sign_in = self._sign_in(scope)
            if sign_in is not None:
                await _answer(scope, receive, send, *sign_in)
                return
            given = cookie_value(headers, AUTH_COOKIE)
        name = self.token_name(given)
        if name is None:
            await _answer(scope, receive, send, 401, self._refusal(given is not None),
                          [(b'www-authenticate', b'Bearer')])
            return
        state = scope.get('state')
        if state is None:
            state = scope['state'] = {}
        state[STATE_KEY] = name
        if name not in self._used:
            self._used.add(name)
            logger.info('aim server: first request with the token %r', name)
        await self.app(scope, receive, send)

    def _sign_in(self, scope: Scope) -> tuple[int, dict | None, list] | None:
        """A page opened with ``?token=SECRET``: set the cookie and reload the page without
        the secret in its address. API addresses never take it (it would stay in logs)."""
        path = scope.get('path', '/')
        if scope['type'] != 'http' or scope.get('method') != 'GET' or path.startswith('/api/'):
            return None
        query = parse_qsl(scope.get('query_string', b'').decode('latin-1'))
        given = next((v for k, v in query if k == 'token'), None)
        if given is None or self.token_name(given) is None:
            return None
        rest = [(k, v) for k, v in query if k != 'token']
        location = path + ('?' + urlencode(rest) if rest else '')
        cookie = f'{AUTH_COOKIE}={given}; Path=/; HttpOnly; SameSite=Strict'
        if scope.get('scheme') == 'https':
            cookie += '; Secure'
        return 303, None, [(b'location', location.encode('latin-1')),
                           (b'set-cookie', cookie.encode('latin-1'))]

    def _refusal(self, sent: bool) -> dict:
        what = ('The access token sent is not one of this server\'s tokens.' if sent else
                'This aim server needs an access token, and the request carried none.')
        how = ('Clients send it as "Authorization: Bearer TOKEN": set the environment '
               'variable AIM_REMOTE_TOKEN, or write it in the credentials file '
               '(AIM_CREDENTIALS_FILE, default ~/.config/aim/credentials) under a section '
               '[HOST:PORT] as "token = TOKEN".')
        if self.browser_sign_in:
            how += (' In a browser, open the UI once with ?token=TOKEN at the end of its '
                    'address, or browse it with `aim up --repo aim://HOST:PORT`.')
        return {'detail': f'{what} {how}'}


async def _answer(scope: Scope, receive: Receive, send: Send, status: int,
                  body: dict | None, extra: list) -> None:
    headers, payload = json_response(status, body, extra)
    if scope['type'] == 'http':
        await send({'type': 'http.response.start', 'status': status, 'headers': headers})
        await send({'type': 'http.response.body', 'body': payload})
        return
    await receive()  # websocket.connect
    if 'websocket.http.response' in (scope.get('extensions') or {}):
        await send({'type': 'websocket.http.response.start', 'status': status,
                    'headers': headers})
        await send({'type': 'websocket.http.response.body', 'body': payload})
    else:  # the server answers 403 to a websocket closed before it was accepted
        await send({'type': 'websocket.close', 'code': 1008})
