"""Small pieces of plain ASGI shared by the middlewares and proxies of ``aim up`` and
``aim server`` (aim.web.security, aim.remote.auth, aim.remote.serve, aim.web.remote_proxy).
No framework is imported here."""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers, names in lower case."""
    return {k.decode('latin-1').lower(): v.decode('latin-1')
            for k, v in scope.get('headers') or []}


def bearer_token(headers: dict[str, str]) -> str | None:
    """The token of ``Authorization: Bearer TOKEN`` ('' for an empty one), or None."""
    scheme, _, token = headers.get('authorization', '').partition(' ')
    return token.strip() if scheme.lower() == 'bearer' else None


def cookie_value(headers: dict[str, str], name: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get('cookie', ''))
    except Exception:  # a malformed cookie header: as if there were none
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def json_response(status: int, body: dict | None,
                  extra: Iterable[tuple[bytes, bytes]] = ()) -> tuple[list, bytes]:
    """(headers, payload) of a JSON answer (no body when ``body`` is None)."""
    payload = json.dumps(body).encode('utf-8') if body is not None else b''
    headers = [(b'content-length', str(len(payload)).encode())] + list(extra)
    if body is not None:
        headers.append((b'content-type', b'application/json'))
    return headers, payload


async def send_json(send: Send, status: int, body: dict | None,
                    extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer an HTTP request with ``body`` as JSON."""
    headers, payload = json_response(status, body, extra)
    await send({'type': 'http.response.start', 'status': status, 'headers': headers})
    await send({'type': 'http.response.body', 'body': payload})
