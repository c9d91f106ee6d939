"""The repository database (``.aim/repo.db``): run data and the cross-run index.

Source-of-truth tables: ``run_props`` (props and params of each run), ``series`` identity
columns, ``chunks`` (the points) and ``logs``. Index tables, derived and rebuilt by
``aim storage reindex``: ``runs`` (one row per run: props and params JSON) and the summary
columns of ``series`` (count, first/last step, last, min, max). Queries read the index.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from aim.errors import RepositoryError, RepositoryFormatError
from aim.storage.objects import SCHEMA_NAMES as OBJECT_SCHEMA_NAMES
from aim.storage.objects import SQLITE_SCHEMA as OBJECT_SCHEMA
from aim.storage.sqlite import Database, is_damage, translate

FORMAT_VERSION = 1

SCHEMA = (
    'CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)',
    """CREATE TABLE IF NOT EXISTS runs(
        hash TEXT PRIMARY KEY, name TEXT, experiment TEXT, description TEXT,
        tags TEXT NOT NULL DEFAULT '[]', archived INTEGER NOT NULL DEFAULT 0,
        creation_time REAL, end_time REAL, updated_at REAL,
        params TEXT NOT NULL DEFAULT '{}')""",
    'CREATE INDEX IF NOT EXISTS runs_by_time ON runs(creation_time)',
    """CREATE TABLE IF NOT EXISTS run_props(
        run_hash TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
        PRIMARY KEY(run_hash, key)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS series(
        id INTEGER PRIMARY KEY, run_hash TEXT NOT NULL, name TEXT NOT NULL,
        context TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
        first_step INTEGER, last_step INTEGER, last REAL, min REAL, max REAL,
        last_time REAL, dtype TEXT,
        UNIQUE(run_hash, name, context))""",
    'CREATE INDEX IF NOT EXISTS series_by_name ON series(name, context)',
    """CREATE TABLE IF NOT EXISTS chunks(
        series_id INTEGER NOT NULL, seq INTEGER NOT NULL,
        first_step INTEGER, last_step INTEGER, n INTEGER,
        steps BLOB, vals BLOB, epochs BLOB, times BLOB,
        PRIMARY KEY(series_id, seq))""",
    # derived: each chunk's last write time and, for long series, its extremes per block
    # (aim/storage/overview.py); the small columns come before the blob
    """CREATE TABLE IF NOT EXISTS overviews(
        series_id INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER, first_step INTEGER,
        stride INTEGER, last_time REAL, points BLOB,
        PRIMARY KEY(series_id, seq))""",
    """CREATE TABLE IF NOT EXISTS logs(
        run_hash TEXT NOT NULL, id INTEGER NOT NULL, time REAL, line TEXT,
        PRIMARY KEY(run_hash, id))""",
    # how far each remote writer session (a client's spool stream) has been applied: the
    # journal position and the next operation number; commits with the points it covers
    # (aim/remote/ingest.py)
    """CREATE TABLE IF NOT EXISTS remote_streams(
        stream TEXT PRIMARY KEY, run_hash TEXT NOT NULL, seg INTEGER NOT NULL DEFAULT -1,
        pos INTEGER NOT NULL DEFAULT 0, ops INTEGER NOT NULL DEFAULT 0,
        closed INTEGER NOT NULL DEFAULT 0, updated REAL, writer TEXT)""",
    'CREATE INDEX IF NOT EXISTS remote_streams_by_run ON remote_streams(run_hash)',
    # the bytes of rich objects, content-addressed (aim/storage/blobs.py)
    'CREATE TABLE IF NOT EXISTS blobs(digest TEXT PRIMARY KEY, size INTEGER, data BLOB)',
    # what MLflow's clients know of an experiment beyond its name (aim/mlflow_api)
    """CREATE TABLE IF NOT EXISTS experiments(
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        lifecycle_stage TEXT NOT NULL DEFAULT 'active',
        creation_time INTEGER, last_update_time INTEGER,
        tags TEXT NOT NULL DEFAULT '{}', artifact_location TEXT)""",
    """CREATE TABLE IF NOT EXISTS logged_models(
        id TEXT PRIMARY KEY, experiment_id TEXT NOT NULL, creation_ms INTEGER,
        doc TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)""",
    # rich objects: series, chunks of their metadata, blob references (aim/storage/objects.py)
    *OBJECT_SCHEMA,
)

RUN_COLUMNS = ('hash', 'name', 'experiment', 'description', 'tags', 'archived',
               'creation_time', 'end_time', 'updated_at', 'params')
SERIES_COLUMNS = ('run_hash', 'name', 'context', 'count', 'first_step', 'last_step', 'last',
                  'min', 'max', 'last_time')
SERIES_ALL = ('id',) + SERIES_COLUMNS + ('dtype',)


def _meta_key(key: str) -> str:
    # the storage format's own entries are not settings
    if not isinstance(key, str) or not key or key == 'format_version':
        raise ValueError(f'{key!r} cannot be used as a meta key')
    return key


class RepoIndex(Database):
    """The repository database; ``repo.index`` in the SDK."""

    def __init__(self, path: str, *, create: bool = False, readonly: bool = False):
        super().__init__(path, readonly=readonly)
        if create and not self._schema_current():
            # (auto_vacuum is chosen when the file is created: aim.storage.sqlite)
            with self.write() as conn:
                columns = [r[1] for r in conn.execute('PRAGMA table_info(overviews)')]
                if columns and 'last_time' not in columns:
                    # an earlier layout of this derived table: dropped, rebuilt by reindex
                    conn.execute('DROP TABLE overviews')
                for stmt in SCHEMA:
                    conn.execute(stmt)
                conn.execute("INSERT OR IGNORE INTO meta VALUES('format_version', ?)",
                             (str(FORMAT_VERSION),))

    def _schema_current(self) -> bool:
        """Whether every table and index exists in its current layout, read without the
        write lock: opening a repository must not wait for another process' write
        transaction (a stopped writer would hold every open for the busy timeout)."""
        try:
            names = {r[0] for r in self.query("SELECT name FROM sqlite_master "
                                              "WHERE type IN ('table', 'index')")}
            columns = {r[1] for r in self.query('PRAGMA table_info(overviews)')}
            version = self.query("SELECT 1 FROM meta WHERE key='format_version'") \
                if 'meta' in names else []
        except RepositoryError:
            return False   # let the write below say what is wrong
        wanted = {'meta', 'runs', 'runs_by_time', 'run_props', 'series', 'series_by_name',
                  'chunks', 'overviews', 'logs', 'remote_streams',
                  'remote_streams_by_run', 'blobs', 'experiments', 'logged_models',
                  *OBJECT_SCHEMA_NAMES}
        return wanted <= names and 'last_time' in columns and bool(version)

    def connection(self) -> sqlite3.Connection:
        """This process' connection, for read-only SQL (the query layer)."""
        return self.conn

    def format_version(self) -> int | None:
        """The format version in ``meta``; None for a database that is not aimkit's.
        A damaged file raises RepositoryError (aim.storage.sqlite.translate)."""
        try:
            rows = self.query("SELECT value FROM meta WHERE key='format_version'")
        except RepositoryError as exc:
            if 'no such table' in str(exc):
                return None
            raise
        try:
            return int(rows[0][0]) if rows else None
        except (TypeError, ValueError):
            return None

    def check_version(self) -> None:
        version = self.format_version()
        if version is None:
            raise RepositoryFormatError(
                f'{self.path} is not an aimkit repository database (no format version).',
                self.path)
        if version > FORMAT_VERSION:
            raise RepositoryFormatError(
                f'{self.path} has storage format version {version}, but this aimkit reads '
                f'version {FORMAT_VERSION}; upgrade aimkit (pip install -U aimkit).', self.path)

    # settings kept in the repository (``meta``): a JSON value under a key -----------------
    def get_meta_json(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key`` in ``meta`` (e.g. the UI's ``ui.tags``), or
        ``default`` when there is none or it does not parse."""
        import json
        rows = self.query('SELECT value FROM meta WHERE key=?', (_meta_key(key),))
        if not rows or rows[0][0] is None:
            return default
        try:
            return json.loads(rows[0][0])
        except (TypeError, ValueError):
            return default

    def set_meta_json(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key`` in ``meta``; None removes it.
        Both backends keep it in their ``meta`` table."""
        import json
        key = _meta_key(key)
        with self.write() as conn:
            if value is None:
                conn.execute('DELETE FROM meta WHERE key=?', (key,))
            else:
                conn.execute('INSERT OR REPLACE INTO meta VALUES(?, ?)',
                             (key, json.dumps(value, ensure_ascii=False)))

    def update_meta_json(self, key: str, change: Callable[[Any], Any],
                         default: Any = None) -> Any:
        """Read-modify-write of the JSON value under ``key``, atomic across processes and
        servers: ``change(current)`` gets the stored value (a copy of ``default`` when there
        is none or it does not parse) and returns the value to store (None removes it),
        all inside one write transaction that holds the value's write lock, so two
        processes editing at once both see the other's edit. What ``change`` raises rolls
        the transaction back and propagates. Returns what ``change`` returned.

        SQLite: the transaction is ``BEGIN IMMEDIATE`` (the database's write lock, waited
        for up to the busy timeout as every write). PostgreSQL: the row is inserted empty if
        missing (ON CONFLICT DO NOTHING, so that there is a row to lock) and read with
        ``SELECT ... FOR UPDATE``, at READ COMMITTED whatever the server's default, so a
        second editor waits for the first one's commit (up to the lock timeout) and then
        reads its value; the rows are those of :meth:`get_meta_json`."""
        import copy
        import json
        key = _meta_key(key)
        with self.write() as conn:
            if getattr(self, 'dialect', 'sqlite') == 'postgresql':
                # (the first statement of the transaction; no serialization failures at
                # this level: a locked row is waited for, then read as committed)
                conn.execute('SET TRANSACTION ISOLATION LEVEL READ COMMITTED')
                conn.execute('INSERT INTO meta(key, value) VALUES(?, NULL) '
                             'ON CONFLICT (key) DO NOTHING', (key,))
                rows = conn.execute('SELECT value FROM meta WHERE key=? FOR UPDATE',
                                    (key,)).fetchall()
            else:
                rows = conn.execute('SELECT value FROM meta WHERE key=?', (key,)).fetchall()
            old = rows[0][0] if rows else None
            current = copy.deepcopy(default)
            if old is not None:
                try:
                    current = json.loads(old)
                except (TypeError, ValueError):
                    pass
            value = change(current)
            if value is None:
                conn.execute('DELETE FROM meta WHERE key=?', (key,))
            else:
                text = json.dumps(value, ensure_ascii=False)
                if text != old:
                    conn.execute('INSERT OR REPLACE INTO meta VALUES(?, ?)', (key, text))
        return value

    # index writes (inside a write transaction) ---------------------------------------------
    @staticmethod
    def upsert_run(conn, row: dict[str, Any]) -> None:
        cols = [c for c in RUN_COLUMNS if c in row]
        updates = ', '.join(f'{c}=excluded.{c}' for c in cols if c != 'hash')
        conn.execute(f'INSERT INTO runs({", ".join(cols)}) VALUES({", ".join("?" * len(cols))}) '
                     f'ON CONFLICT(hash) DO UPDATE SET {updates}', [row[c] for c in cols])

    @staticmethod
    def delete_run(conn, run_hash: str) -> None:
        from aim.storage import objects
        # its objects, and the blobs (in the database) that no other run's objects use
        digests = objects.delete_runs(conn, [run_hash])
        for digest in objects.unreferenced(conn, digests):
            conn.execute('DELETE FROM blobs WHERE digest=?', (digest,))
        for table in ('chunks', 'overviews'):
            conn.execute(f'DELETE FROM {table} WHERE series_id IN '
                         '(SELECT id FROM series WHERE run_hash=?)', (run_hash,))
        for table, col in (('series', 'run_hash'), ('logs', 'run_hash'),
                           ('run_props', 'run_hash'), ('runs', 'hash'),
                           ('remote_streams', 'run_hash')):
            conn.execute(f'DELETE FROM {table} WHERE {col}=?', (run_hash,))

    # reads ---------------------------------------------------------------------------------
    def run_row(self, run_hash: str) -> dict | None:
        rows = self._index_query(f'SELECT {", ".join(RUN_COLUMNS)} FROM runs WHERE hash=?',
                                 (run_hash,))
        if rows is None:   # a damaged index: the row as reindex would build it
            found = self._rows_from_data(run_hash)
            return found[0] if found else None
        return dict(zip(RUN_COLUMNS, rows[0])) if rows else None

    def run_rows(self, where: str = '', params=(), order: str = 'creation_time DESC') -> list[dict]:
        sql = f'SELECT {", ".join(RUN_COLUMNS)} FROM runs'
        if where:
            sql += f' WHERE {where}'
        rows = self._index_query(f'{sql} ORDER BY {order}', params)
        if rows is None and not where and order == 'creation_time DESC':
            found = self._rows_from_data()
            found.sort(key=lambda r: (r['creation_time'] is not None, r['creation_time'] or 0),
                       reverse=True)
            return found
        if rows is None:
            rows = self.query(f'{sql} ORDER BY {order}', params)   # raises, translated
        return [dict(zip(RUN_COLUMNS, r)) for r in rows]

    def _index_query(self, sql: str, params=()) -> list | None:
        """Rows from the index, or None when the index is damaged (other errors raise)."""
        with self.lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                if is_damage(e):
                    return None
                raise translate(e, self.path) from None

    def _rows_from_data(self, run_hash: str | None = None) -> list[dict]:
        """Index rows built from the run data (props and params), for a listing that
        outlives a damaged index until `aim storage reindex` rebuilds it. Damaged data
        raises RepositoryError as any read does."""
        import json

        from aim.storage.repository import index_row
        sql = 'SELECT run_hash, key, value FROM run_props'
        args: tuple = ()
        if run_hash is not None:
            sql += ' WHERE run_hash=?'
            args = (run_hash,)
        runs: dict[str, dict] = {}
        for h, key, value in self.query(sql, args):
            runs.setdefault(h, {})[key] = value
        out = []
        for h, values in runs.items():
            params = values.pop('params', None) or '{}'
            props = {}
            for key, value in values.items():
                try:
                    props[key] = json.loads(value)
                except (TypeError, ValueError):
                    continue
            out.append(index_row(h, props, params))
        return out

    def run_hashes(self) -> list[str]:
        return [r[0] for r in self.query('SELECT hash FROM runs ORDER BY creation_time DESC')]

    def data_run_hashes(self) -> list[str]:
        """Every run that has data (props), indexed or not."""
        return [r[0] for r in self.query('SELECT DISTINCT run_hash FROM run_props '
                                         'ORDER BY run_hash')]

    def series_rows(self, run_hash: str | None = None) -> list[dict]:
        sql = f'SELECT {", ".join(SERIES_COLUMNS)} FROM series'
        params: tuple = ()
        if run_hash is not None:
            sql += ' WHERE run_hash=?'
            params = (run_hash,)
        return [dict(zip(SERIES_COLUMNS, r)) for r in self.query(sql, params)]

    def series_row(self, run_hash: str, name: str, context: str) -> dict | None:
        rows = self.query(f'SELECT {", ".join(SERIES_COLUMNS)} FROM series '
                          f'WHERE run_hash=? AND name=? AND context=?', (run_hash, name, context))
        return dict(zip(SERIES_COLUMNS, rows[0])) if rows else None


__all__ = ['RepoIndex', 'RUN_COLUMNS', 'SERIES_COLUMNS', 'SERIES_ALL']
