"""Maintenance of a PostgreSQL repository and ``aim storage migrate SRC DST``.

``check`` and ``vacuum`` of a PostgreSQL repository do what they do for SQLite, with what
the database offers: every run's props, params and points are read back and compared with
the series summaries (aim/storage/maintenance.py: ``check_run_data``); vacuum removes
rows that no run owns and runs ``VACUUM (ANALYZE)`` on each table.

``migrate`` copies every run from one repository to another, between any two backends
(a directory or a ``postgresql://`` URL). A run is copied in one transaction of the
destination, so an interrupted migration leaves whole runs only; running it again skips
the runs already there (after checking they hold the same points) and copies the rest.
At the end the counts of both sides are compared: runs, series, and points per series.
Blobs (aim/storage/blobs.py) that the destination's blob store lacks are copied too.

The UI's settings in the ``meta`` table are copied as well: only the keys that start with
``ui.`` (saved views ``ui.views``, tag colours and descriptions ``ui.tags``); the
storage's own entries (``format_version``, ``blob_store``) stay those of the destination.
Each key is merged into the destination's value in one transaction
(``RepoIndex.update_meta_json``), so running the migration again adds nothing twice:

- views: a source view is added unless the destination has one with the same id, or with
  the same name and path (the destination's is kept); at most 500 views in all, as the UI
  allows;
- tags: a tag the destination lacks is copied; for a tag it has, the source fills only the
  fields (colour, description) the destination lacks;
- any other ``ui.`` key is copied when the destination has none.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aim.storage.maintenance import CheckReport, RunCheck, VacuumReport, check_run_data

Progress = Callable[[str], None]


def check_database_repository(store, *, thorough: bool = True,
                              progress: Progress | None = None) -> CheckReport:
    report = CheckReport(runs=[])
    index_problems: list[str] = []
    hashes = store.list_run_hashes()
    for run_hash in hashes:
        report.runs.append(RunCheck(run_hash, check_run_data(
            store, run_hash, thorough=thorough, index_problems=index_problems)))
        if progress is not None:
            progress(run_hash)
    indexed = {r[0] for r in store.db.query('SELECT hash FROM runs')}
    unindexed = sorted(set(hashes) - indexed)
    if unindexed:
        report.notes.append(f'{len(unindexed)} runs have no index row ({", ".join(unindexed[:5])}'
                            f'); `aim storage reindex` adds them')
    stale = sorted(indexed - set(hashes))
    if stale:
        report.notes.append(f'{len(stale)} index rows name runs with no data; `aim storage '
                            f'reindex` removes them')
    report.notes += [f'{p}; `aim storage reindex` rebuilds it' for p in index_problems]
    orphans = store.db.query('SELECT count(*) FROM chunks WHERE series_id NOT IN '
                             '(SELECT id FROM series)')[0][0]
    if orphans:
        report.notes.append(f'{orphans} chunks belong to no series; `aim storage vacuum` '
                            f'removes them')
    return report


def _tables_size(db) -> int:
    from aim.storage.postgres import TABLES
    return int(db.query('SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) '
                        'FROM pg_class c WHERE c.relname = ANY(?) AND c.relkind = ?',
                        (list(TABLES), 'r'))[0][0])


def vacuum_database_repository(store, progress: Progress | None = None,
                               full: bool = False) -> VacuumReport:
    """Remove rows no run owns, then VACUUM (ANALYZE) each table (``full``: VACUUM FULL,
    which rewrites the tables and holds them for the whole rewrite)."""
    from aim.storage.postgres import TABLES
    db = store.db
    report = VacuumReport(bytes_before=_tables_size(db))
    with db.write() as conn:
        for table in ('chunks', 'overviews'):
            conn.execute(f'DELETE FROM {table} WHERE series_id NOT IN (SELECT id FROM series)')
        conn.execute('DELETE FROM series WHERE run_hash NOT IN '
                     '(SELECT DISTINCT run_hash FROM run_props)')
    from aim.storage.maintenance import collect_object_garbage
    report.removed_blobs = collect_object_garbage(store)
    with db.lock:
        for table in TABLES:
            try:   # VACUUM runs outside a transaction (the connection is in autocommit)
                db.conn.raw.execute(f'VACUUM {"FULL " if full else ""}(ANALYZE) {table}')
                report.compacted.append(table)
            except Exception as exc:
                report.failed[table] = str(exc)
            if progress is not None:
                progress(table)
    report.bytes_after = _tables_size(db)
    return report


# ---------------------------------------------------------------------------------- migrate
@dataclass
class MigrateReport:
    copied: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    # (run hash, why): not copied this time (a live run, or different data in DST)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # the final comparison: what differs between SRC and DST (empty when they agree)
    mismatches: list[str] = field(default_factory=list)
    blobs_copied: int = 0
    # what happened to each ``ui.`` meta key of SRC, one line each ("ui.views: 3 views
    # added, 1 already there")
    meta: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.mismatches


def _fingerprint(store, run_hash: str) -> dict:
    """What a run holds, for comparing two repositories: its series and their point counts
    and step ranges (from the chunks, not the summaries)."""
    rows = store.db.query('SELECT s.name, s.context, COALESCE(SUM(c.n), 0), MIN(c.first_step), '
                          'MAX(c.last_step) FROM series s LEFT JOIN chunks c '
                          'ON c.series_id = s.id WHERE s.run_hash = ? '
                          'GROUP BY s.id, s.name, s.context', (run_hash,))
    return {(name, ctx): (int(n), first, last) for name, ctx, n, first, last in rows}


def migrate(src, dst, progress: Progress | None = None) -> MigrateReport:
    """Copy every run of ``src`` (a RepoStore) into ``dst``; see the module doc."""
    from aim.errors import AimError
    report = MigrateReport()
    hashes = src.list_run_hashes()
    there = set(dst.list_run_hashes())
    for run_hash in hashes:
        try:
            if run_hash in there:
                if _fingerprint(src, run_hash) == _fingerprint(dst, run_hash):
                    report.already_there.append(run_hash)
                else:
                    report.skipped.append((run_hash, 'the destination holds a run with this '
                                                     'hash and different points; delete one'))
            elif src.is_active(run_hash):
                report.skipped.append((run_hash, 'still being written; migrate again once '
                                                 'it has ended'))
            else:
                src.copy_run_to(run_hash, dst)
                report.copied.append(run_hash)
        except AimError as exc:
            report.skipped.append((run_hash, str(exc)))
        if progress is not None:
            progress(run_hash)
    from aim.storage.blobs import copy_blobs
    if src.blobs.location != dst.blobs.location:
        report.blobs_copied = copy_blobs(src.blobs, dst.blobs)
    report.meta = copy_ui_meta(src, dst)
    done = set(report.copied) | set(report.already_there)
    for run_hash in sorted(done):
        a, b = _fingerprint(src, run_hash), _fingerprint(dst, run_hash)
        if a != b:
            report.mismatches.append(f'run {run_hash}: {len(a)} series in the source, '
                                     f'{len(b)} in the destination, or different point counts')
        elif src.run_data(run_hash).get_params_text() != dst.run_data(run_hash).get_params_text():
            report.mismatches.append(f'run {run_hash}: params differ')   # (copied verbatim)
    return report


# ---------------------------------------------------------------- the UI's settings (meta)
UI_PREFIX = 'ui.'
MAX_VIEWS = 500     # as aim/web/views_api.py


def _views(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict) and 'id' in v] \
        if isinstance(value, list) else []


def merge_views(dest: Any, source: Any) -> tuple[list[dict], str]:
    """The destination's views with the source's it lacks (see the module doc)."""
    merged = _views(dest)
    ids = {v['id'] for v in merged}
    named = {(v.get('name'), v.get('path')) for v in merged}
    added = there = over = 0
    for view in _views(source):
        if view['id'] in ids or (view.get('name'), view.get('path')) in named:
            there += 1
        elif len(merged) >= MAX_VIEWS:
            over += 1
        else:
            merged.append(view)
            ids.add(view['id'])
            named.add((view.get('name'), view.get('path')))
            added += 1
    what = f'{added} views added, {there} already there'
    if over:
        what += f', {over} not copied (the destination holds the most, {MAX_VIEWS})'
    return merged, what


def merge_tags(dest: Any, source: Any) -> tuple[dict, str]:
    """The destination's tag settings, completed by the source's (see the module doc)."""
    merged = dict(dest) if isinstance(dest, dict) else {}
    added = filled = there = 0
    for name, entry in (source.items() if isinstance(source, dict) else ()):
        if not isinstance(entry, dict):
            continue
        fields = {k: v for k, v in entry.items() if v is not None}
        have = merged.get(name)
        if not isinstance(have, dict):
            if fields:
                merged[name] = fields
                added += 1
            continue
        missing = {k: v for k, v in fields.items() if have.get(k) is None}
        if missing:
            merged[name] = {**have, **missing}
            filled += 1
        else:
            there += 1
    return merged, f'{added} tags added, {filled} completed, {there} already there'


def merge_ui_value(key: str, dest: Any, source: Any) -> tuple[Any, str]:
    """The value of ``key`` for the destination (None: none) and what was done."""
    merged: Any
    if key == 'ui.views':
        merged, what = merge_views(dest, source)
    elif key == 'ui.tags':
        merged, what = merge_tags(dest, source)
    elif dest is None:
        return source, 'copied'
    else:
        return dest, "the destination's value kept"
    if dest is None and merged in ([], {}):
        return None, what       # nothing to store
    return merged, what


def copy_ui_meta(src, dst) -> list[str]:
    """Merge the ``ui.`` meta entries of ``src`` into ``dst``; a line per key saying what
    was copied."""
    keys = sorted(k for (k,) in src.index.query('SELECT key FROM meta')
                  if isinstance(k, str) and k.startswith(UI_PREFIX))
    lines = []
    for key in keys:
        source = src.index.get_meta_json(key)
        if source is None:       # (an empty or unreadable entry)
            continue
        said: list[str] = []

        def merge(dest: Any, key: str = key, source: Any = source,
                  said: list[str] = said) -> Any:
            merged, what = merge_ui_value(key, dest, source)
            said.append(what)
            return merged

        dst.index.update_meta_json(key, merge)
        lines.append(f'{key}: {said[-1]}')
    return lines
