"""Tags of the repository: their colours and descriptions, renaming and removing them.

- ``GET /api/tags`` every tag a run carries or that has a colour, with its run count,
  colour (``#rrggbb`` or null) and description;
- ``PUT /api/tags/{name}`` sets the colour and/or description (the fields sent; null
  clears one) and, with ``name`` in the body, renames the tag on every run;
- ``DELETE /api/tags/{name}`` removes the tag from every run and forgets its colour.

Colours and descriptions live in the repository's ``meta`` table under ``ui.tags`` (a JSON
object ``{tag: {"color", "description"}}``), so both backends keep them and every UI
on the repository shows the same. Each change of ``ui.tags`` is one read-modify-write
transaction of the database (``RepoIndex.update_meta_json``), so edits made at the same
instant by two servers (or a server and a script) are all kept. Renaming and removing edit
each run's tags like the run page does (before that transaction); a run being written
meanwhile is left as it is and listed in ``skipped``.
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, StringConstraints

from aim.errors import AimError
from aim.web import repo_summary
from aim.web.api_errors import ApiError

META_KEY = 'ui.tags'
MAX_TAG_LENGTH = 200
MAX_TAG_DESCRIPTION = 2000
COLOR = re.compile(r'^#[0-9a-fA-F]{6}$')

TagName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG_LENGTH)]


class TagEdit(BaseModel):
    color: str | None = Field(None, max_length=7, description='#rrggbb, or null for none')
    description: str | None = Field(None, max_length=MAX_TAG_DESCRIPTION)
    name: TagName | None = Field(None, description='a new name: renames the tag on every run')


def tag_meta(repo) -> dict[str, dict]:
    value = repo.index.get_meta_json(META_KEY, {})
    return value if isinstance(value, dict) else {}


def _entry(meta: dict, name: str) -> dict:
    """The set fields of a tag's stored entry."""
    found = meta.get(name)
    return {k: v for k, v in found.items() if v is not None} if isinstance(found, dict) else {}


def update_tag_meta(repo, change: Callable[[dict], object]) -> None:
    """``change(meta)`` edits the stored ``ui.tags`` in place, in one transaction."""
    def apply(value):
        meta = value if isinstance(value, dict) else {}
        change(meta)
        return meta or None
    repo.index.update_meta_json(META_KEY, apply, {})


def list_tags(repo) -> list[dict]:
    meta = tag_meta(repo)
    counts = {t['name']: t['runs'] for t in repo_summary.tags(repo)}
    out = []
    for name in sorted(set(counts) | set(meta)):
        found = meta.get(name)
        entry = found if isinstance(found, dict) else {}
        out.append({'name': name, 'runs': counts.get(name, 0),
                    'color': entry.get('color'), 'description': entry.get('description')})
    return out


def runs_with_tag(repo, tag: str) -> list[str]:
    if getattr(repo.index, 'dialect', 'sqlite') == 'postgresql':
        sql = ('SELECT hash FROM runs WHERE EXISTS (SELECT 1 FROM '
               'jsonb_array_elements_text(runs.tags::jsonb) AS j(value) WHERE j.value = ?)')
    else:
        sql = ('SELECT hash FROM runs WHERE EXISTS (SELECT 1 FROM json_each(runs.tags) AS j '
               'WHERE j.value = ?)')
    return [r[0] for r in repo.index.query(sql, [tag])]


def _retag(repo, tag: str, new: str | None) -> tuple[list[str], list[str]]:
    """Replace ``tag`` by ``new`` (or drop it) on every run: (changed, skipped)."""
    from aim.web.run_details import edit_run
    changed, skipped = [], []
    for run_hash in runs_with_tag(repo, tag):
        tags = repo.index.query('SELECT tags FROM runs WHERE hash = ?', [run_hash])
        current = json.loads(tags[0][0]) if tags else []
        wanted = [new if t == tag else t for t in current if t != tag or new is not None]
        try:
            edit_run(repo, run_hash, {'tags': [t for t in wanted if t]})
            changed.append(run_hash)
        except AimError:   # written by a live process now: it keeps its tags
            skipped.append(run_hash)
    return changed, skipped


def tags_router(repo, writable: Callable[[], None]) -> APIRouter:
    router = APIRouter()
    # orders this server's renames and removals, which edit runs' tags one run at a time;
    # the change of ui.tags itself is atomic across processes (update_tag_meta)
    lock = threading.Lock()

    @router.get('/api/tags', tags=['repository'])
    def get_tags():
        return list_tags(repo)

    @router.put('/api/tags/{name:path}', tags=['edits'])
    def put_tag(edit: TagEdit, name: str = Path(max_length=MAX_TAG_LENGTH)):
        writable()
        with lock:
            return _put(name, edit)

    def _put(name: str, edit: TagEdit) -> dict:
        sent = edit.model_fields_set
        if 'color' in sent and edit.color is not None and not COLOR.match(edit.color):
            raise ApiError(422, 'InvalidRequest', f'color must be #rrggbb (six hex digits), '
                           f'got {edit.color!r}; null removes the colour.')
        result: dict = {'skipped': []}
        target = name
        skipped: list[str] = []
        if edit.name is not None and edit.name.strip() != name:
            target = edit.name.strip()
            if not target:
                raise ApiError(422, 'InvalidRequest', 'A tag name cannot be blank.')
            changed, skipped = _retag(repo, name, target)
            result.update(renamed=changed, skipped=skipped)

        def change(meta: dict) -> None:
            entry = _entry(meta, name)
            if target != name:
                # the new name keeps what it had, taking what it lacks from the old one
                entry = {**entry, **_entry(meta, target)}
                if not skipped:
                    meta.pop(name, None)
            if 'color' in sent:
                entry['color'] = edit.color.lower() if edit.color else None
            if 'description' in sent:
                entry['description'] = edit.description or None
            entry = {k: v for k, v in entry.items() if v is not None}
            if entry:
                meta[target] = entry
            else:
                meta.pop(target, None)

        update_tag_meta(repo, change)
        result['tag'] = next((t for t in list_tags(repo) if t['name'] == target),
                             {'name': target, 'runs': 0, 'color': None, 'description': None})
        return result

    @router.delete('/api/tags/{name:path}', tags=['edits'])
    def delete_tag(name: str = Path(max_length=MAX_TAG_LENGTH)):
        writable()
        with lock:
            return _delete(name)

    def _delete(name: str) -> dict:
        changed, skipped = _retag(repo, name, None)
        if not skipped and name in tag_meta(repo):
            update_tag_meta(repo, lambda meta: meta.pop(name, None))
        return {'removed_from': changed, 'skipped': skipped}

    return router
