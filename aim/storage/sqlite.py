"""SQLite connections, transactions and the translation of its errors.

This is the one place where ``sqlite3`` errors become aimkit errors (STYLE.md).
Connections are per process: after ``fork`` the child opens its own.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading

from aim.errors import RepositoryError, RepositoryWriteError

BUSY_TIMEOUT_MS = 60_000
# Connections inherited through fork: closing one in the child could checkpoint or unlink
# the parent's WAL, so the child keeps them referenced and never touches them.
_inherited: list = []


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether SQLite's error means the file's contents are damaged."""
    low = str(exc).lower()
    return any(word in low for word in ('malformed', 'not a database', 'corrupt',
                                        'could not decode'))


def translate(exc: sqlite3.Error, path: str) -> RepositoryError:
    msg = str(exc)
    low = msg.lower()
    if 'disk is full' in low or 'database or disk is full' in low:
        return RepositoryWriteError(f'The disk holding {path} is full; nothing stored was '
                                    f'damaged. Free some space and try again.', path)
    if 'readonly' in low or 'read-only' in low or 'attempt to write' in low:
        return RepositoryWriteError(f'{path} cannot be written (read-only file or directory). '
                                    f'Check its permissions, or open the repository read-only.',
                                    path)
    if 'unable to open' in low:
        return RepositoryWriteError(f'Cannot open {path}: {msg}. Check that the directory '
                                    f'exists and is writable.', path)
    if 'database is locked' in low or 'database is busy' in low:
        return RepositoryError(f'{path} stayed locked for {BUSY_TIMEOUT_MS // 1000} s by '
                               f'another process that holds a write transaction on it'
                               f'{_lock_holders(path)}. Is that process stopped (Ctrl-Z, a '
                               f'debugger, a frozen container)? Resume it (`fg`, `kill -CONT '
                               f'<pid>`) or end it; nothing stored was lost, and reading '
                               f'(Repo(path, read_only=True)) works meanwhile.', path)
    if is_damage(exc):
        return RepositoryError(f'{path} is damaged ({msg}). Run `aim storage check` to see '
                               f'which runs are affected.', path)
    return RepositoryError(f'SQLite error on {path}: {msg}', path)


def _lock_holders(path: str) -> str:
    """Who may hold the database's write lock: the other live processes writing runs
    (the pids in the repository's run lock files), stopped ones first. SQLite does not
    say which process holds its lock; this reads only small files, on the error path."""
    locks_dir = os.path.join(os.path.dirname(path), 'locks')
    stopped: set[int] = set()
    running: set[int] = set()
    try:
        names = os.listdir(locks_dir)
    except OSError:
        return ''
    for name in names[:10_000]:
        try:
            with open(os.path.join(locks_dir, name), 'rb') as f:
                pid = int(f.read(32).decode().strip() or 0)
            with open(f'/proc/{pid}/stat', 'rb') as f:
                state = f.read().rsplit(b')', 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            continue
        if pid and pid != os.getpid():
            (stopped if state in (b'T', b't') else running).add(pid)
    if stopped:
        return (f' (process {", ".join(map(str, sorted(stopped)))} writes runs here and is '
                f'stopped)')
    if running:
        return f' (processes writing runs here: {", ".join(map(str, sorted(running)[:10]))})'
    return ''


def connect(path: str, *, create: bool = False, readonly: bool = False) -> sqlite3.Connection:
    if not create and not os.path.exists(path):
        raise RepositoryError(f'{path} does not exist', path)
    try:
        if readonly:
            conn = sqlite3.connect(f'file:{path}?mode=ro', uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                conn.execute('SELECT count(*) FROM sqlite_master').fetchone()
            except sqlite3.OperationalError:
                # a WAL database on read-only media without its -shm file: nobody can be
                # writing it, so read it as immutable
                conn.close()
                conn = sqlite3.connect(f'file:{path}?immutable=1', uri=True,
                                       isolation_level=None, check_same_thread=False)
        else:
            new_file = not os.path.exists(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
            if new_file:
                # must precede everything that writes the file (WAL mode included), or it
                # is silently ignored; lets deletes give space back (incremental_vacuum)
                conn.execute('PRAGMA auto_vacuum=INCREMENTAL')
        conn.execute(f'PRAGMA busy_timeout={BUSY_TIMEOUT_MS}')
        if not readonly:
            mode = conn.execute('PRAGMA journal_mode').fetchone()[0]
            if mode.lower() != 'wal':
                conn.execute('PRAGMA journal_mode=WAL')
            conn.execute('PRAGMA synchronous=NORMAL')
    except sqlite3.Error as e:
        raise translate(e, path) from None
    return conn


class Database:
    """A lazily opened, fork-aware SQLite database file guarded by a thread lock."""
    dialect = 'sqlite'

    def __init__(self, path: str, *, readonly: bool = False):
        self.path = path
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self.lock = threading.RLock()
        self.mmap_bytes = 0  # see map_reads

    def map_reads(self, nbytes: int) -> None:
        """Read up to ``nbytes`` of the file through a memory map (SQLite's ``mmap_size``)
        instead of a ``pread`` per 4 KB page: a chart reading 80 MB of points spends about
        half as long in SQLite. Only for a long-lived reader on a local file system (a
        server): an I/O error on a mapped page ends the process with SIGBUS instead of
        raising an error, and network file systems do not keep a mapping coherent."""
        with self.lock:
            self.mmap_bytes = int(nbytes)
            if self._conn is not None and self._pid == os.getpid():
                self._conn.execute(f'PRAGMA mmap_size={self.mmap_bytes}').fetchall()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            if self._conn is not None:
                _inherited.append(self._conn)
            self._conn = connect(self.path, create=not self.readonly, readonly=self.readonly)
            self._pid = os.getpid()
            if self.mmap_bytes:
                self._conn.execute(f'PRAGMA mmap_size={self.mmap_bytes}').fetchall()
        return self._conn

    def query(self, sql: str, params=()) -> list:
        with self.lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise translate(e, self.path) from None

    @contextlib.contextmanager
    def write(self):
        """A write transaction (BEGIN IMMEDIATE) yielding the connection."""
        with self.lock:
            conn = self.conn
            try:
                if conn.in_transaction:
                    # an exception (a signal handler's) struck between BEGIN and the block
                    # below last time: that transaction wrote nothing and is abandoned
                    conn.execute('ROLLBACK')
                conn.execute('BEGIN IMMEDIATE')
            except sqlite3.Error as e:
                raise translate(e, self.path) from None
            try:
                yield conn
            except sqlite3.Error as e:
                conn.execute('ROLLBACK')
                raise translate(e, self.path) from None
            except BaseException:
                conn.execute('ROLLBACK')
                raise
            try:
                conn.execute('COMMIT')
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute('ROLLBACK')
                raise translate(e, self.path) from None

    @staticmethod
    def lock_run(conn, run_hash: str) -> None:
        """Writers are already serialized by the write transaction (BEGIN IMMEDIATE);
        PostgreSQL takes a lock per run here (aim.storage.postgres)."""

    def close(self) -> None:
        with self.lock:
            if self._conn is not None and self._pid == os.getpid():
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            elif self._conn is not None:
                _inherited.append(self._conn)
            self._conn = None
