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
from aim.storage.repository import DB_NAME

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
    # what else the user should know (a damaged old index table unlinked)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.damaged


def reindex_repository(store: RepoStore, progress: Callable[[str], None] | None = None
                       ) -> ReindexReport:
    """Rebuild ``runs``, the series summaries and the chunk overviews in one transaction."""
    store.recover_dead_runs()
    report = ReindexReport()
    with store.db.write() as conn:   # committed first: the rebuild reads committed rows
        _adopt_lost_series(conn, store, report)
    with store.db.write() as conn, _Reader(store.db_path) as read:
        try:
            data_hashes = [r[0] for r in read.execute(
                'SELECT DISTINCT run_hash FROM run_props ORDER BY run_hash')]
        except sqlite3.DatabaseError as exc:
            raise RepositoryError(
                f'{store.db_path}: the list of runs cannot be read ({exc}); the index was '
                f'left as it was. Copy the runs that still read into a new repository '
                f'(`aim runs cp "*" --destination NEW`), then use that one.',
                store.db_path) from None
        old_rows, damage = _read_old_index(store.db_path)
        old_hashes = set(old_rows)
        conn.execute(f'DROP TABLE IF EXISTS {_REBUILT}')
        conn.execute(_RUNS_DDL.replace('IF NOT EXISTS runs(', f'{_REBUILT}('))
        hashes = sorted(set(data_hashes) | (old_hashes - set(data_hashes)))
        for run_hash in hashes:
            if run_hash in data_hashes:
                _reindex_run(conn, read, store, run_hash, old_rows.get(run_hash), report)
            else:
                _restore_from_old_row(conn, old_rows[run_hash], report)
            if progress:
                progress(run_hash)
        _swap_in(conn, damage, report)
    with store.db.write() as conn:   # after an in-place swap (see _swap_in)
        conn.execute(_RUNS_INDEX_DDL)
    from aim.storage.objects import rebuild_summaries
    with store.db.write() as conn:
        report.damaged += rebuild_summaries(conn)
    return report


class _Reader:
    """A read-only connection for the run data, beside the write transaction.

    SQLite may refuse further work on a connection whose write transaction met a damaged
    page; reading on a connection of its own keeps the rebuild going (and, opened after
    the write transaction began, it reads the same committed state). After an error it
    is opened anew."""

    def __init__(self, path: str):
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.reset()

    def reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def execute(self, sql: str, args=()):
        if self._conn is None:
            self._conn = sqlite3.connect(f'file:{self.path}?mode=ro', uri=True,
                                         check_same_thread=False)
        try:
            return self._conn.execute(sql, args)
        except sqlite3.DatabaseError:
            self.reset()
            raise


def _read_old_index(db_path: str) -> tuple[dict[str, tuple], str | None]:
    """The rows of the current ``runs`` table that still read, and what SQLite finds
    wrong with it (None when intact). Read on a connection of its own: SQLite may refuse
    further work on a connection that met a damaged page inside a write transaction."""
    rows: dict[str, tuple] = {}
    conn = sqlite3.connect(f'file:{db_path}?mode=ro', uri=True)
    try:
        try:
            hashes = [r[0] for r in conn.execute('SELECT hash FROM runs')]
        except sqlite3.DatabaseError:
            hashes = []
        for run_hash in hashes:
            try:
                row = conn.execute(f'SELECT {", ".join(RUN_COLUMNS)} FROM runs WHERE hash=?',
                                   (run_hash,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None:
                rows[run_hash] = tuple(row)
        try:
            verdict = [r[0] for r in conn.execute('PRAGMA quick_check(runs)')]
            damage = None if verdict == ['ok'] else '; '.join(verdict[:3])
        except sqlite3.DatabaseError as exc:
            damage = str(exc)
    finally:
        conn.close()
    return rows, damage


def _insert(conn, row) -> None:
    conn.execute(f'INSERT OR REPLACE INTO {_REBUILT}({", ".join(RUN_COLUMNS)}) '
                 f'VALUES({", ".join("?" * len(RUN_COLUMNS))})', tuple(row))


def _reason(exc: BaseException) -> str:
    return f'{type(exc).__name__}: {exc}'


def _json_valid(conn, text) -> bool:
    return bool(conn.execute('SELECT json_valid(?)', (text,)).fetchone()[0])


def _reindex_run(conn, read: _Reader, store: RepoStore, run_hash: str, old: tuple | None,
                 report: ReindexReport) -> None:
    from aim.storage.repository import index_row, with_savepoint
    try:
        props = {k: json.loads(v) for k, v in read.execute(
            "SELECT key, value FROM run_props WHERE run_hash=? AND key != 'params'",
            (run_hash,)).fetchall()}
        found = read.execute("SELECT value FROM run_props WHERE run_hash=? AND key='params'",
                             (run_hash,)).fetchone()
        params = found[0] if found and found[0] is not None else '{}'
    except (sqlite3.DatabaseError, ValueError, RecursionError) as exc:
        if old is not None:
            _insert(conn, old)
        kept = 'its old index row is kept' if old is not None else 'it had no index row'
        report.skipped.append((run_hash, f'its properties cannot be read ({_reason(exc)}); '
                                         f'{kept}'))
        return
    if not _json_valid(conn, params):
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
            store._recompute_summaries(conn, run_hash, read)
            store._rebuild_overviews(conn, run_hash, read)
        with_savepoint(conn, rebuild)
    except Exception as exc:  # undecodable or unreadable chunks: report, index the rest
        if isinstance(exc, sqlite3.DatabaseError):
            read.reset()
        report.damaged.append((run_hash, _reason(exc)))


def _adopt_lost_series(conn, store: RepoStore, report: ReindexReport) -> None:
    """Chunks whose series row is gone get a row again, in the run they belonged to
    (found as `aim storage check` finds it), named ``__lost_series_<id>`` with an empty
    context: their points read again. Chunks whose run cannot be told stay as they are."""
    from aim.storage.maintenance import LOST_SERIES, lost_series
    try:
        lost = lost_series(store.db)
    except RepositoryError:
        return   # unreadable chunks: the rebuild goes on, check reports them
    for sid, (points, owner, _) in sorted(lost.items()):
        if owner is None:
            continue
        conn.execute("INSERT OR IGNORE INTO series(id, run_hash, name, context) "
                     "VALUES(?, ?, ?, '{}')", (sid, owner, LOST_SERIES.format(sid)))
        report.restored.append((owner, f'{points} points whose series row was lost are '
                                       f'read again as series {LOST_SERIES.format(sid)}'))


def _restore_from_old_row(conn, old: tuple, report: ReindexReport) -> None:
    """An index row whose run has no props: the props are written back from the row."""
    row = dict(zip(RUN_COLUMNS, old))
    run_hash = row['hash']
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


def _swap_in(conn, damage: str | None, report: ReindexReport) -> None:
    """Replace ``runs`` by the rebuilt table (same transaction as the rebuild).

    A damaged old table can be neither dropped nor renamed (SQLite reads its pages for
    both): its entries are removed from the schema instead, which leaves its pages unused
    in the file until ``aim storage vacuum --full`` rewrites it."""
    if damage is not None:
        # The schema is edited in place: the rebuilt table takes the old one's name, and
        # the schema version changes so every connection reads the schema anew. (Table
        # DDL cannot follow in this transaction: the index on it is created after it.)
        version = conn.execute('PRAGMA schema_version').fetchone()[0]
        conn.execute('PRAGMA writable_schema=ON')
        try:
            conn.execute("DELETE FROM sqlite_master WHERE tbl_name='runs'")
            conn.execute("UPDATE sqlite_master SET name='runs', tbl_name='runs', sql=? "
                         "WHERE name=?", (_RUNS_DDL.replace('IF NOT EXISTS ', ''), _REBUILT))
            conn.execute("UPDATE sqlite_master SET name='sqlite_autoindex_runs_1', "
                         "tbl_name='runs' WHERE name=?", (f'sqlite_autoindex_{_REBUILT}_1',))
            conn.execute(f'PRAGMA schema_version={int(version) + 1}')
        finally:
            conn.execute('PRAGMA writable_schema=OFF')
        report.notes.append(
            f'the old run index was damaged ({damage}), so it was unlinked rather than '
            f'deleted: its pages stay unused in {DB_NAME} (`aim storage check` reports '
            f'them) until `aim storage vacuum --full` rewrites the file')
        return
    conn.execute('DROP TABLE IF EXISTS runs')
    conn.execute(f'ALTER TABLE {_REBUILT} RENAME TO runs')
    conn.execute(_RUNS_INDEX_DDL)


__all__ = ['ReindexReport', 'reindex_repository']
