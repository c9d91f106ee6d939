"""``aim storage reindex``: rebuild the derived index from the run data, all or nothing.

The new ``runs`` table is built beside the old one (``runs_rebuilt``) and swapped in, with
every series summary and chunk overview, in one transaction: a rebuild that fails leaves
the index exactly as it was. A run whose props or params cannot be read is *skipped*: it
keeps its old index row (when it had one) and is named in the report, never dropped from
the listing. A run whose points cannot be decoded is *damaged*: it is indexed from its props
and keeps its old summaries. Params text that is not valid JSON is kept as it is (queries
that read params skip that run; ``aim storage check`` names it) unless the old index row
holds valid params.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aim.errors import RepositoryError
from aim.storage.index import RUN_COLUMNS, SCHEMA

if TYPE_CHECKING:
    from aim.storage.repository import RepoStore

_REBUILT = 'runs_rebuilt'
_RUNS_DDL = next(s for s in SCHEMA if 'TABLE IF NOT EXISTS runs(' in s)
_RUNS_INDEX_DDL = next(s for s in SCHEMA if 'runs_by_time' in s)


@dataclass
class ReindexReport:
    reindexed: int = 0
    # (run hash, what went wrong): not re-indexed, its old index row (if any) kept
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # (run hash, what went wrong): indexed from its props, its points unreadable
    damaged: list[tuple[str, str]] = field(default_factory=list)
    # (run hash, what was done) for runs whose data was repaired from the old index row
    restored: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.damaged


def reindex_repository(store: RepoStore, progress: Callable[[str], None] | None = None
                       ) -> ReindexReport:
    """Rebuild ``runs``, the series summaries and the chunk overviews in one transaction."""
    store.recover_dead_runs()
    report = ReindexReport()
    with store.db.write() as conn:
        try:
            data_hashes = [r[0] for r in conn.execute(
                'SELECT DISTINCT run_hash FROM run_props ORDER BY run_hash')]
        except sqlite3.DatabaseError as exc:
            raise RepositoryError(
                f'{store.db_path}: the list of runs cannot be read ({exc}); the index was '
                f'left as it was. Copy the runs that still read into a new repository '
                f'(`aim runs cp "*" --destination NEW`), then use that one.',
                store.db_path) from None
        old_hashes = _old_index_hashes(conn)
        conn.execute(f'DROP TABLE IF EXISTS {_REBUILT}')
        conn.execute(_RUNS_DDL.replace('IF NOT EXISTS runs(', f'{_REBUILT}('))
        hashes = sorted(set(data_hashes) | (old_hashes - set(data_hashes)))
        for run_hash in hashes:
            if run_hash in data_hashes:
                _reindex_run(conn, store, run_hash, report)
            else:
                _restore_from_old_row(conn, run_hash, report)
            if progress:
                progress(run_hash)
        _swap_in(conn, store)
    return report


def _old_index_hashes(conn) -> set[str]:
    try:
        return {r[0] for r in conn.execute('SELECT hash FROM runs')}
    except sqlite3.DatabaseError:
        return set()   # a damaged index: rebuilt from the data alone


def _old_row(conn, run_hash: str) -> tuple | None:
    try:
        return conn.execute(f'SELECT {", ".join(RUN_COLUMNS)} FROM runs WHERE hash=?',
                            (run_hash,)).fetchone()
    except sqlite3.DatabaseError:
        return None


def _insert(conn, row) -> None:
    conn.execute(f'INSERT OR REPLACE INTO {_REBUILT}({", ".join(RUN_COLUMNS)}) '
                 f'VALUES({", ".join("?" * len(RUN_COLUMNS))})', tuple(row))


def _reason(exc: BaseException) -> str:
    return f'{type(exc).__name__}: {exc}'


def _json_valid(conn, text) -> bool:
    return bool(conn.execute('SELECT json_valid(?)', (text,)).fetchone()[0])


def _reindex_run(conn, store: RepoStore, run_hash: str, report: ReindexReport) -> None:
    from aim.storage.repository import index_row, with_savepoint
    try:
        props = {k: json.loads(v) for k, v in conn.execute(
            "SELECT key, value FROM run_props WHERE run_hash=? AND key != 'params'",
            (run_hash,))}
        found = conn.execute("SELECT value FROM run_props WHERE run_hash=? AND key='params'",
                             (run_hash,)).fetchone()
        params = found[0] if found and found[0] is not None else '{}'
    except (sqlite3.DatabaseError, ValueError, RecursionError) as exc:
        old = _old_row(conn, run_hash)
        if old is not None:
            _insert(conn, old)
        kept = 'its old index row is kept' if old is not None else 'it had no index row'
        report.skipped.append((run_hash, f'its properties cannot be read ({_reason(exc)}); '
                                         f'{kept}'))
        return
    if not _json_valid(conn, params):
        old = _old_row(conn, run_hash)
        if old is not None and _json_valid(conn, old[-1]):
            params = old[-1]
            kept = 'the params of its old index row are kept'
        else:
            kept = 'queries that read params skip it'
        report.skipped.append((run_hash, f'its params are not valid JSON; it is listed with '
                                         f'its props and {kept}'))
    row = index_row(run_hash, props, params)
    _insert(conn, [row[c] for c in RUN_COLUMNS])
    report.reindexed += 1
    try:
        def rebuild() -> None:
            store._recompute_summaries(conn, run_hash)
            store._rebuild_overviews(conn, run_hash)
        with_savepoint(conn, rebuild)
    except Exception as exc:  # undecodable or unreadable chunks: report, index the rest
        report.damaged.append((run_hash, _reason(exc)))


def _restore_from_old_row(conn, run_hash: str, report: ReindexReport) -> None:
    """An index row whose run has no props: the props are written back from the row."""
    old = _old_row(conn, run_hash)
    if old is None:
        return
    row = dict(zip(RUN_COLUMNS, old))
    props = {'name': row['name'], 'experiment': row['experiment'],
             'description': row['description'], 'archived': bool(row['archived']),
             'creation_time': row['creation_time'], 'end_time': row['end_time'],
             'updated_at': row['updated_at']}
    try:
        props['tags'] = json.loads(row['tags'] or '[]')
    except ValueError:
        props['tags'] = []
    conn.executemany('INSERT OR REPLACE INTO run_props VALUES(?, ?, ?)',
                     [(run_hash, k, json.dumps(v)) for k, v in props.items()])
    conn.execute("INSERT OR REPLACE INTO run_props VALUES(?, 'params', ?)",
                 (run_hash, row['params'] if row['params'] is not None else '{}'))
    _insert(conn, old)
    report.reindexed += 1
    report.restored.append((run_hash, 'its properties were missing from the run data and '
                                      'were written back from its index row'))


def _swap_in(conn, store: RepoStore) -> None:
    """Replace ``runs`` by the rebuilt table (same transaction as the rebuild)."""
    try:
        conn.execute('DROP TABLE IF EXISTS runs')
    except sqlite3.DatabaseError as exc:
        raise RepositoryError(
            f'{store.db_path}: the old run index cannot be removed ({exc}), so the index was '
            f'left as it was. Copy the runs into a new repository (`aim runs cp "*" '
            f'--destination NEW`), then use that one.', store.db_path) from None
    conn.execute(f'ALTER TABLE {_REBUILT} RENAME TO runs')
    conn.execute(_RUNS_INDEX_DDL)


__all__ = ['ReindexReport', 'reindex_repository']
