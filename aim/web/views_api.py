"""Saved views: a name (and a description) for a page of the UI with its settings, i.e.
its path and query string, kept in the repository so that everyone who opens the
repository's UI sees them.

They live as one JSON list under the key ``ui.views`` of the repository's ``meta`` table
(``RepoIndex.get_meta_json`` / ``update_meta_json``), which both backends have. Edits go
through the write checks of every edit (aim/web/security.py: same origin, ``X-Aim-Token``)
and are refused with 403 under ``aim up --read-only``. Each edit is one read-modify-write
transaction of the database holding the value's write lock, so edits made at the same
instant by two servers (or a server and a script) on one repository are all kept.
"""
from __future__ import annotations

import re
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body

from aim.web.api_errors import ApiError

META_KEY = 'ui.views'
MAX_VIEWS = 500
MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_PATH = 8000
_CONTROL_RE = re.compile(r'[\x00-\x1f\x7f]')


def _invalid(message: str, field: str, **detail) -> ApiError:
    return ApiError(400, 'InvalidView', message, field=field, **detail)


def check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid('A view needs a name: a text of 1 to 200 characters.', 'name')
    name = value.strip()
    if not name:
        raise _invalid('A view needs a name: a text of 1 to 200 characters.', 'name')
    if len(name) > MAX_NAME:
        raise _invalid(f'A view\'s name is at most {MAX_NAME} characters; this one has '
                       f'{len(name)}.', 'name', limit=MAX_NAME)
    if _CONTROL_RE.search(name):
        raise _invalid('A view\'s name is one line of text without control characters.',
                       'name')
    return name


def check_description(value: Any) -> str:
    if value is None:
        return ''
    if not isinstance(value, str):
        raise _invalid('A view\'s description is a text.', 'description')
    if len(value) > MAX_DESCRIPTION:
        raise _invalid(f'A view\'s description is at most {MAX_DESCRIPTION} characters; '
                       f'this one has {len(value)}.', 'description', limit=MAX_DESCRIPTION)
    return value


def check_path(value: Any, page_paths: tuple[str, ...]) -> str:
    """A path of one of the UI's pages with its query string: ``/metrics?q=...``. Not an
    address of another site (``//host``, ``https:``), nor of the API or static files."""
    if not isinstance(value, str) or not value:
        raise _invalid('A view needs the path of a page, e.g. /metrics?q=...', 'path')
    if len(value) > MAX_PATH:
        raise _invalid(f'A view\'s path is at most {MAX_PATH} characters; this one has '
                       f'{len(value)}.', 'path', limit=MAX_PATH)
    if not value.startswith('/') or value.startswith('//') or '\\' in value \
            or _CONTROL_RE.search(value):
        raise _invalid('A view\'s path is a page of this UI: it starts with one "/" (e.g. '
                       '/metrics?q=...), without a scheme, host or backslash.', 'path',
                       path=value[:200])
    page = re.split(r'[?#]', value, maxsplit=1)[0]
    if '//' in page or '/../' in page + '/' or '/./' in page + '/':
        raise _invalid('A view\'s path is a page of this UI, without empty, "." or ".." '
                       'segments.', 'path', path=value[:200])
    first = '/' + page.strip('/').split('/', 1)[0] if page.strip('/') else '/'
    deeper = page.strip('/').count('/')
    if first not in page_paths or (deeper and first != '/runs') or (deeper > 1):
        raise _invalid(f'{page!r} is not a page of this UI; a view saves one of '
                       f'{", ".join(p for p in page_paths if p != "/")} or a run\'s page '
                       f'(/runs/HASH).', 'path', path=value[:200])
    return value


def valid_views(value: Any) -> list[dict]:
    """The saved views in a stored ``ui.views`` value (entries that are not views are
    left out)."""
    return [v for v in value if isinstance(v, dict) and 'id' in v] \
        if isinstance(value, list) else []


def views_router(repo, read_only: bool, page_paths: tuple[str, ...]) -> APIRouter:
    router = APIRouter(tags=['views'])

    def stored() -> list[dict]:
        return valid_views(repo.index.get_meta_json(META_KEY, []))

    def update(change) -> None:
        """``change(views)`` on the stored views, atomically (see the module doc)."""
        repo.index.update_meta_json(META_KEY, lambda value: change(valid_views(value)), [])

    def writable() -> None:
        if read_only:
            raise ApiError(403, 'ReadOnlyError', 'This UI was started with --read-only, so '
                           'saved views cannot be changed. Restart `aim up` without '
                           '--read-only to save, rename or delete views.')

    def find(views: list[dict], view_id: str) -> dict:
        for view in views:
            if view.get('id') == view_id:
                return view
        raise ApiError(404, 'ViewNotFound', f'There is no saved view {view_id!r}; it may '
                       f'have been deleted.', id=view_id)

    def body_dict(body: Any) -> dict:
        if not isinstance(body, dict):
            raise _invalid('Send a JSON object: {"name", "path", "description"}.', 'body')
        unknown = sorted(set(body) - {'name', 'path', 'description'})
        if unknown:
            raise _invalid(f'Unknown field(s) {", ".join(unknown)}; a view has name, path '
                           f'and description.', unknown[0])
        return body

    @router.get('/api/views')
    def list_views():
        """The saved views, newest first."""
        return {'views': sorted(stored(), key=lambda v: -(v.get('created') or 0)),
                'read_only': read_only}

    @router.post('/api/views', status_code=201)
    def create_view(body: Annotated[Any, Body()]):
        writable()
        body = body_dict(body)
        view: dict[str, Any] = {'id': secrets.token_hex(6), 'name': check_name(body.get('name')),
                'description': check_description(body.get('description')),
                'path': check_path(body.get('path'), page_paths)}
        view['created'] = view['updated'] = time.time()

        def add(views: list[dict]) -> list[dict]:
            if len(views) >= MAX_VIEWS:
                raise ApiError(400, 'TooManyViews', f'A repository keeps at most {MAX_VIEWS} '
                               f'saved views; delete some first.', limit=MAX_VIEWS)
            return views + [view]

        update(add)
        return view

    @router.patch('/api/views/{view_id}')
    def edit_view(view_id: str, body: Annotated[Any, Body()]):
        writable()
        body = body_dict(body)
        changes: dict[str, Any] = {}
        if 'name' in body:
            changes['name'] = check_name(body['name'])
        if 'description' in body:
            changes['description'] = check_description(body['description'])
        if 'path' in body:
            changes['path'] = check_path(body['path'], page_paths)
        edited: dict = {}

        def edit(views: list[dict]) -> list[dict]:
            view = find(views, view_id)
            view.update(changes, updated=time.time())
            edited.update(view)
            return views

        update(edit)
        return edited

    @router.delete('/api/views/{view_id}')
    def delete_view(view_id: str):
        writable()

        def delete(views: list[dict]) -> list[dict]:
            view = find(views, view_id)
            return [v for v in views if v is not view]

        update(delete)
        return {'deleted': view_id}

    return router
