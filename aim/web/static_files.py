"""Serve the UI's files from ``aim/web/static`` and refuse anything outside it."""
from __future__ import annotations

import html
import mimetypes
import os
from pathlib import Path

from fastapi.responses import FileResponse, HTMLResponse

from aim.web.api_errors import ApiError

STATIC_ROOT = Path(__file__).resolve().parent / 'static'
mimetypes.add_type('text/javascript', '.js')
mimetypes.add_type('text/css', '.css')


def resolve_static(root: Path, relative: str) -> Path:
    """The file under ``root`` that ``relative`` names; ApiError 404 for anything that
    escapes ``root`` (``..``, absolute paths, symlinks leading out) or does not exist."""
    if '\0' in relative or relative.startswith(('/', '\\')) or '\\' in relative:
        raise ApiError(404, 'NotFound', f'No static file {relative!r}.')
    root = root.resolve()
    target = (root / relative).resolve()
    if os.path.commonpath([root, target]) != str(root) or not target.is_file():
        raise ApiError(404, 'NotFound', f'No static file {relative!r}.')
    return target


def static_response(relative: str) -> FileResponse:
    path = resolve_static(STATIC_ROOT, relative)
    media_type = mimetypes.guess_type(path.name)[0] or 'application/octet-stream'
    return FileResponse(path, media_type=media_type, headers={'Cache-Control': 'no-cache'})


WRITE_TOKEN_META = '<meta name="aim-write-token" content="">'


def _index_text(write_token: str) -> str:
    text = resolve_static(STATIC_ROOT, 'index.html').read_text(encoding='utf-8')
    return text.replace(WRITE_TOKEN_META, WRITE_TOKEN_META.replace(
        'content=""', f'content="{html.escape(write_token, quote=True)}"'))


def index_page(write_token: str = '') -> HTMLResponse:
    """The page, carrying the server's write token (sent back with every edit)."""
    return HTMLResponse(_index_text(write_token), headers={'Cache-Control': 'no-cache'})


def not_found_page(path: str, write_token: str = '') -> HTMLResponse:
    """A 404 for a path that is no page: the UI with its 'page not found' view already in
    place (app.js draws the same view), so it reads right without scripts too."""
    body = (f'<main id="page"><section class="not-found"><h1>Page not found</h1>'
            f'<p>There is no page at <code>{html.escape(path)}</code>.</p>'
            f'<p><a href="/runs" data-nav>Back to the runs</a> or pick a page from the bar '
            f'above.</p></section></main>')
    text = _index_text(write_token).replace('<main id="page"></main>', body, 1)
    text = text.replace('<title>aim</title>', '<title>Page not found · aim</title>', 1)
    return HTMLResponse(text, status_code=404, headers={'Cache-Control': 'no-cache'})
