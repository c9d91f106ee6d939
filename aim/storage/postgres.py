"""The repository on PostgreSQL: the second backend of the same format.

``Repo('postgresql://user@host:port/db')``, ``aim server --repo postgresql://...`` and
``aim up --repo postgresql://...`` read and write the tables ``aim/storage/index.py``
describes, in a PostgreSQL database, through psycopg 3 (the ``postgres`` extra). The
layers above talk to a :class:`PgDatabase` exactly as to the SQLite
:class:`aim.storage.sqlite.Database`: ``query()``, ``write()`` yielding a connection with
``execute``/``executemany``, one connection per process guarded by a thread lock. The SQL
they write is SQLite's; :func:`pg_sql` rewrites the few constructs PostgreSQL spells
differently (placeholders, ``INSERT OR REPLACE/IGNORE``, SQLite's ``+column`` index hints,
``IN (SELECT value FROM json_each(?))``). What has no such rewrite (JSON paths of the
query push-down, the runs table's param sort) asks the connection's ``dialect``.

Differences from the SQLite repository, by design:

- ``runs.params`` keeps the params text as written (key order included), and beside it
  ``runs.params_jsonb``, generated from it, is what query push-down reads with
  PostgreSQL's JSON operators (and a GIN index).
- No journal and no lock files: a process writing a run directly into the database writes
  its points into the local spool first (aim/remote/spool.py), and a sender applies them
  as ``aim server`` does (aim/remote/ingest.py). A crash loses nothing acknowledged by
  ``track()``: the spool is the journal, and the next process (or ``aim sync``) ships it.
- Run ownership across processes and machines: a batch is applied under
  ``pg_advisory_xact_lock`` of its run, which dies with the transaction (and with the
  connection of a killed server); a writer session is live while its batches keep coming
  (the stream lease of aim/remote/ingest.py).
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aim.errors import RepositoryError, RepositoryWriteError
from aim.storage.objects import PG_SCHEMA as OBJECT_SCHEMA
from aim.storage.objects import TABLES as OBJECT_TABLES

SCHEMES = ('postgresql://', 'postgres://')
DIALECT = 'postgresql'
CONNECT_TIMEOUT_S = 10
# A statement that waits longer than this on a lock fails with an error naming the cause
LOCK_TIMEOUT_MS = 60_000

# The tables of aim/storage/index.py in PostgreSQL's types. TEXT columns compare and sort
# byte-wise (COLLATE "C"), as SQLite's do, whatever the database's locale.
SCHEMA = (
    'CREATE TABLE IF NOT EXISTS meta(key TEXT COLLATE "C" PRIMARY KEY, value TEXT)',
    """CREATE TABLE IF NOT EXISTS runs(
        hash TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C",
        experiment TEXT COLLATE "C", description TEXT COLLATE "C",
        tags TEXT NOT NULL DEFAULT '[]', archived INTEGER NOT NULL DEFAULT 0,
        creation_time DOUBLE PRECISION, end_time DOUBLE PRECISION,
        updated_at DOUBLE PRECISION, params TEXT NOT NULL DEFAULT '{}',
        params_jsonb JSONB GENERATED ALWAYS AS (params::jsonb) STORED)""",
    # newest first, runs without a time last: the order of listings and queries
    'CREATE INDEX IF NOT EXISTS runs_by_time ON runs(creation_time DESC NULLS LAST)',
    'CREATE INDEX IF NOT EXISTS runs_params ON runs USING GIN (params_jsonb jsonb_path_ops)',
    """CREATE TABLE IF NOT EXISTS run_props(
        run_hash TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, value TEXT,
        PRIMARY KEY(run_hash, key))""",
    """CREATE TABLE IF NOT EXISTS series(
        id BIGSERIAL PRIMARY KEY, run_hash TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL, context TEXT COLLATE "C" NOT NULL,
        count BIGINT NOT NULL DEFAULT 0, first_step BIGINT, last_step BIGINT,
        last DOUBLE PRECISION, min DOUBLE PRECISION, max DOUBLE PRECISION,
        last_time DOUBLE PRECISION, dtype TEXT,
        UNIQUE(run_hash, name, context))""",
    'CREATE INDEX IF NOT EXISTS series_by_name ON series(name, context)',
    """CREATE TABLE IF NOT EXISTS chunks(
        series_id BIGINT NOT NULL, seq BIGINT NOT NULL,
        first_step BIGINT, last_step BIGINT, n BIGINT,
        steps BYTEA, vals BYTEA, epochs BYTEA, times BYTEA,
        PRIMARY KEY(series_id, seq))""",
    """CREATE TABLE IF NOT EXISTS overviews(
        series_id BIGINT NOT NULL, seq BIGINT NOT NULL, n BIGINT, first_step BIGINT,
        stride BIGINT, last_time DOUBLE PRECISION, points BYTEA,
        PRIMARY KEY(series_id, seq))""",
    """CREATE TABLE IF NOT EXISTS logs(
        run_hash TEXT COLLATE "C" NOT NULL, id BIGINT NOT NULL, time DOUBLE PRECISION,
        line TEXT, PRIMARY KEY(run_hash, id))""",
    """CREATE TABLE IF NOT EXISTS remote_streams(
        stream TEXT COLLATE "C" PRIMARY KEY, run_hash TEXT COLLATE "C" NOT NULL,
        seg BIGINT NOT NULL DEFAULT -1, pos BIGINT NOT NULL DEFAULT 0,
        ops BIGINT NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0,
        updated DOUBLE PRECISION, writer TEXT)""",
    'CREATE INDEX IF NOT EXISTS remote_streams_by_run ON remote_streams(run_hash)',
    'CREATE TABLE IF NOT EXISTS blobs(digest TEXT COLLATE "C" PRIMARY KEY, size BIGINT, '
    'data BYTEA)',
    """CREATE TABLE IF NOT EXISTS experiments(
        id BIGSERIAL PRIMARY KEY, name TEXT COLLATE "C" NOT NULL UNIQUE,
        lifecycle_stage TEXT NOT NULL DEFAULT 'active',
        creation_time BIGINT, last_update_time BIGINT,
        tags TEXT NOT NULL DEFAULT '{}', artifact_location TEXT)""",
    """CREATE TABLE IF NOT EXISTS logged_models(
        id TEXT COLLATE "C" PRIMARY KEY, experiment_id TEXT NOT NULL, creation_ms BIGINT,
        doc TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)""",
    # the query push-down's type test: SQLite's json_type words for a JSONB value
    """CREATE OR REPLACE FUNCTION aim_jtype(j jsonb) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE jsonb_typeof(j)
            WHEN 'number' THEN CASE WHEN j::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END
            WHEN 'string' THEN 'text'
            WHEN 'boolean' THEN j::text
            ELSE jsonb_typeof(j) END $$""",
    *OBJECT_SCHEMA,
)
TABLES = ('meta', 'runs', 'run_props', 'series', 'chunks', 'overviews', 'logs',
          'remote_streams', 'blobs', 'experiments', 'logged_models', *OBJECT_TABLES)

# For INSERT OR REPLACE/IGNORE: each table's key and (for statements without a column
# list) its columns in order.
_KEYS = {'meta': ('key',), 'runs': ('hash',), 'run_props': ('run_hash', 'key'),
         'series': ('run_hash', 'name', 'context'), 'chunks': ('series_id', 'seq'),
         'overviews': ('series_id', 'seq'), 'logs': ('run_hash', 'id'),
         'remote_streams': ('stream',), 'blobs': ('digest',),
         'object_series': ('run_hash', 'name', 'context'),
         'object_chunks': ('series_id', 'seq'), 'object_blobs': ('series_id', 'digest')}
_COLUMNS = {
    'meta': ('key', 'value'),
    'run_props': ('run_hash', 'key', 'value'),
    'chunks': ('series_id', 'seq', 'first_step', 'last_step', 'n', 'steps', 'vals', 'epochs',
               'times'),
    'overviews': ('series_id', 'seq', 'n', 'first_step', 'stride', 'last_time', 'points'),
    'logs': ('run_hash', 'id', 'time', 'line'),
    'blobs': ('digest', 'size', 'data'),
    'object_chunks': ('series_id', 'seq', 'first_step', 'last_step', 'n', 'data'),
    'object_blobs': ('series_id', 'digest'),
}


def is_database_url(path: Any) -> bool:
    return isinstance(path, str) and path.startswith(SCHEMES)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit('@', 1)
    user = netloc[0].split(':', 1)[0]
    return urlunsplit(parts._replace(netloc=f'{user}:***@{netloc[1]}'))


def _driver():
    try:
        import psycopg
    except ImportError:
        raise RepositoryError('A PostgreSQL repository needs the psycopg driver: '
                              'pip install "aimkit[postgres]" (or psycopg[binary]).',
                              'postgresql') from None
    return psycopg


# ------------------------------------------------------------------------- SQL rewrite
_INSERT_OR = re.compile(r'^\s*INSERT\s+OR\s+(REPLACE|IGNORE)\s+INTO\s+(\w+)\s*(\(([^)]*)\))?',
                        re.IGNORECASE)
_JSON_LIST = re.compile(r'IN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\(\?\)\s*\)', re.IGNORECASE)
_HINT = re.compile(r'(?<=[\s(,])\+(?=[A-Za-z_])')
# tables whose new rows get their id from the database (SQLite's lastrowid)
_INSERT_SERIES = re.compile(r'^\s*INSERT\s+INTO\s+(series|experiments)\s*\(', re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> tuple[str, tuple[int, ...], bool]:
    """SQLite's SQL as PostgreSQL's: (text, indexes of the arguments that are JSON lists to
    pass as arrays, whether the statement returns the new row's id)."""
    tail = ''
    m = _INSERT_OR.match(sql)
    if m:
        kind, table, cols = m.group(1).upper(), m.group(2), m.group(4)
        columns = [c.strip() for c in cols.split(',')] if cols else list(_COLUMNS[table])
        sql = f'INSERT INTO {table}({", ".join(columns)}) ' + sql[m.end():].lstrip()
        if kind == 'IGNORE':
            tail = ' ON CONFLICT DO NOTHING'
        else:
            keys = _KEYS[table]
            updates = ', '.join(f'{c}=EXCLUDED.{c}' for c in columns if c not in keys)
            tail = f' ON CONFLICT ({", ".join(keys)}) DO ' + \
                (f'UPDATE SET {updates}' if updates else 'NOTHING')
    returning = bool(_INSERT_SERIES.match(sql)) and 'ON CONFLICT' not in sql.upper() \
        and not tail
    sql = _HINT.sub('', sql)
    lists = []
    out = []
    n_args = 0
    quoted = False
    i = 0
    while i < len(sql):
        ch = sql[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted:
            if ch == 'I' or ch == 'i':
                m = _JSON_LIST.match(sql, i)
                if m:
                    out.append('= ANY(%s)')
                    lists.append(n_args)
                    n_args += 1
                    i = m.end()
                    continue
            if ch == '?':
                out.append('%s')
                n_args += 1
                i += 1
                continue
        if ch == '%':
            out.append('%%')
        else:
            out.append(ch)
        i += 1
    text = ''.join(out) + tail + (' RETURNING id' if returning else '')
    return text, tuple(lists), returning


def _args(params, lists: tuple[int, ...]) -> list:
    out = []
    for i, value in enumerate(params):
        if value is True or value is False:
            value = int(value)      # SQLite's booleans are integers; so are these columns
        elif i in lists and isinstance(value, str):
            value = json.loads(value)
        out.append(value)
    return out


# ------------------------------------------------------------------------- connections
class PgCursor:
    """The part of sqlite3.Cursor the storage layer uses."""
    __slots__ = ('_cur', 'lastrowid')

    def __init__(self, cur, lastrowid=None):
        self._cur = cur
        self.lastrowid = lastrowid

    def fetchone(self):
        return self._cur.fetchone() if self._cur.description is not None else None

    def fetchall(self):
        return self._cur.fetchall() if self._cur.description is not None else []

    def fetchmany(self, n: int):
        return self._cur.fetchmany(n) if self._cur.description is not None else []

    def __iter__(self):
        return iter(self.fetchall())

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount


class PgConnection:
    """A psycopg connection that takes SQLite's SQL (see :func:`pg_sql`)."""
    dialect = DIALECT

    def __init__(self, raw, path: str):
        self.raw = raw
        self.path = path

    def execute(self, sql: str, params=()) -> PgCursor:
        text, lists, returning = pg_sql(sql)
        cur = self.raw.cursor()
        try:
            # (always a list: psycopg then reads the escaped %% back as %)
            cur.execute(text, _args(params or (), lists))
        except Exception as e:
            raise _translate(e, self.path) from None
        if returning:
            row = cur.fetchone()
            return PgCursor(cur, row[0] if row else None)
        return PgCursor(cur)

    def executemany(self, sql: str, rows) -> None:
        text, lists, _ = pg_sql(sql)
        rows = [_args(r, lists) for r in rows]
        if not rows:
            return
        try:
            with self.raw.cursor() as cur:
                cur.executemany(text, rows)
        except Exception as e:
            raise _translate(e, self.path) from None

    def set_progress_handler(self, handler, n: int) -> None:
        """SQLite's interrupt hook; queries on PostgreSQL are bounded by statement_timeout."""

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


def _translate(exc: Exception, path: str) -> RepositoryError:
    if isinstance(exc, RepositoryError):
        return exc
    psycopg = _driver()
    msg = str(exc).strip()
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return RepositoryWriteError(f'{path}: {msg}. Grant the database user write access to '
                                    f'the aimkit tables, or open the repository read-only.',
                                    path)
    if isinstance(exc, psycopg.errors.DiskFull):
        return RepositoryWriteError(f'The disk of the PostgreSQL server of {path} is full; '
                                    f'nothing stored was damaged. Free some space and try '
                                    f'again.', path)
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return RepositoryError(f'{path}: a lock stayed held for {LOCK_TIMEOUT_MS // 1000} s '
                               f'by another session ({msg}). See pg_stat_activity for the '
                               f'session holding it.', path)
    if isinstance(exc, psycopg.OperationalError):
        return RepositoryError(f'Cannot reach the PostgreSQL database {path}: {msg}. Check '
                               f'that the server runs and the URL, user and password are '
                               f'right.', path)
    if isinstance(exc, (psycopg.errors.DataError, psycopg.errors.IntegrityError)):
        return RepositoryError(f'PostgreSQL refused a statement on {path}: {msg}', path)
    return RepositoryError(f'PostgreSQL error on {path}: {msg}', path)


def connect(url: str, *, readonly: bool = False) -> PgConnection:
    psycopg = _driver()
    from psycopg.types.string import TextLoader
    path = redact(url)
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                              application_name='aimkit')
    except Exception as e:
        raise _translate(e, path) from None
    # JSONB comes back as its text, as SQLite's JSON text columns do
    raw.adapters.register_loader('jsonb', TextLoader)
    raw.adapters.register_loader('json', TextLoader)
    conn = PgConnection(raw, path)
    conn.execute(f'SET lock_timeout = {LOCK_TIMEOUT_MS}')
    if readonly:
        conn.execute('SET default_transaction_read_only = on')
    return conn


class PgDatabase:
    """Connections to a PostgreSQL database with the interface of
    :class:`aim.storage.sqlite.Database`: one connection per thread (made when the thread
    first needs it, again after a fork or when the server went away), so that the threads
    of a server apply batches of different runs at the same time, each in a transaction
    of its own. (SQLite allows one writer at a time: its Database shares one connection.)"""
    dialect = DIALECT

    def __init__(self, url: str, *, readonly: bool = False):
        self.url = url
        self.path = redact(url)
        self.readonly = readonly
        self._local = threading.local()
        self._all: list[tuple[int, PgConnection]] = []
        self._all_lock = threading.Lock()
        # what Database offers; PostgreSQL needs no lock across threads, but a fork taken
        # while this is held waits for the transaction in progress (aim.sdk.run)
        self.lock = threading.RLock()

    @property
    def conn(self) -> PgConnection:
        conn = getattr(self._local, 'conn', None)
        if conn is None or self._local.pid != os.getpid() or conn.raw.closed or \
                conn.raw.broken:
            if conn is not None and self._local.pid == os.getpid():
                conn.close()
            conn = connect(self.url, readonly=self.readonly)
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._all_lock:
                self._all = [(pid, c) for pid, c in self._all if not c.raw.closed] + \
                    [(os.getpid(), conn)]
        return conn

    def _reset_if_broken(self) -> None:
        conn = getattr(self._local, 'conn', None)
        if conn is not None and (conn.raw.closed or conn.raw.broken):
            conn.close()
            self._local.conn = None

    def query(self, sql: str, params=()) -> list:
        for attempt in (0, 1):
            try:
                return self.conn.execute(sql, params).fetchall()
            except RepositoryError:
                conn = getattr(self._local, 'conn', None)
                broken = conn is None or conn.raw.broken
                self._reset_if_broken()
                if attempt or not broken:
                    raise
        raise AssertionError('unreachable')

    @contextlib.contextmanager
    def write(self):
        """A transaction yielding this thread's connection (reconnecting once if the
        server went away since the last one)."""
        conn = self.conn
        try:
            if conn.in_transaction:
                conn.raw.execute('ROLLBACK')
            conn.raw.execute('BEGIN')
        except Exception:
            self._reset_if_broken()
            conn = self.conn
            try:
                conn.raw.execute('BEGIN')
            except Exception as e:
                self._reset_if_broken()
                raise _translate(e, self.path) from None
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):
                conn.raw.execute('ROLLBACK')
            self._reset_if_broken()
            raise
        try:
            conn.raw.execute('COMMIT')
        except Exception as e:
            with contextlib.suppress(Exception):
                conn.raw.execute('ROLLBACK')
            self._reset_if_broken()
            raise _translate(e, self.path) from None

    @staticmethod
    def lock_run(conn, run_hash: str) -> None:
        """Take the run's write lock for the rest of the transaction (every server and
        process on this database waits for it; it dies with the transaction)."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (run_hash,))

    def close(self) -> None:
        """Close every connection this process opened (of every thread)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for pid, conn in conns:
            if pid == os.getpid():   # a parent's connection is never touched by a child
                conn.close()
        self._local = threading.local()


def create_schema(db: PgDatabase, format_version: int) -> None:
    with db.write() as conn:
        # two processes creating the tables at once: one waits for the other
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('aimkit-schema', 0))")
        for stmt in SCHEMA:
            conn.execute(stmt)
        conn.execute("INSERT OR IGNORE INTO meta VALUES('format_version', ?)",
                     (str(format_version),))


def schema_present(db: PgDatabase) -> bool:
    names = {r[0] for r in db.query("SELECT tablename FROM pg_tables "
                                    "WHERE schemaname = current_schema()")}
    return set(TABLES) <= names


def drop_schema(db: PgDatabase) -> None:
    with db.write() as conn:
        for table in TABLES:
            conn.execute(f'DROP TABLE IF EXISTS {table}')
