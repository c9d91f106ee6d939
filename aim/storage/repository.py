"""The repository as a whole: layout, opening, live runs, recovery, reindex, copy, delete."""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any

from aim.errors import (
    MissingRunError,
    RepositoryDatabaseMissingError,
    RepositoryError,
    RepositoryFormatError,
    RepositoryNotFoundError,
    RepositoryWriteError,
    RunLockedError,
)
from aim.storage import locks
from aim.storage.index import RepoIndex
from aim.storage.runfile import RunData

AIM_DIR = '.aim'
DB_NAME = 'repo.db'
FORMAT_VERSION = 1
SYNC_INTERVAL_S = 1.0
BATCH_LOCK_WAIT_S = 20.0


class RepoStore:
    """Everything under one ``.aim`` directory."""
    backend = 'sqlite'

    def __init__(self, root: str, *, create: bool = False, readonly: bool = False):
        self.root = os.path.abspath(root)
        self.path = os.path.join(self.root, AIM_DIR)
        self.readonly = readonly
        self.db_path = self.index_path = os.path.join(self.path, DB_NAME)
        self.journal_dir = os.path.join(self.path, 'journal')
        self.locks_dir = os.path.join(self.path, 'locks')
        # NFS, Lustre, ...: refused for writing, read with a warning (before anything is made)
        from aim.storage.netfs import check_repository_filesystem
        check_repository_filesystem(self.root, self.path, readonly)
        exists = os.path.isdir(self.path)
        if exists:
            self._refuse_lost_database(create)
        if not exists and not create:
            raise RepositoryNotFoundError(
                f'No aim repository at {self.root} (no {AIM_DIR} directory). Run `aim init` '
                f'there, or pass init=True.', self.root)
        if exists and not readonly and os.access(self.path, os.W_OK) and any(
                os.path.lexists(p) and not os.path.isdir(p)
                for p in (self.journal_dir, self.locks_dir, os.path.join(self.path, 'quarantine'))):
            # a file (or a link to no folder) where the repository keeps a folder: moved,
            # as it is, to quarantine/_repository/ and the folder made again
            from aim.storage.recovery import repair_folders
            try:
                repair_folders(self.path)
            except OSError as e:
                raise RepositoryWriteError(
                    f'{e.filename or self.path} is not a folder and could not be moved out of '
                    f'the way ({e.strerror}); move it out of {self.path} yourself.',
                    self.path) from None
        if create and not readonly:
            for d in (self.path, self.journal_dir, self.locks_dir):
                try:
                    os.makedirs(d, exist_ok=True)
                except OSError as e:
                    what = 'it is a file, not a folder: move it away' \
                        if os.path.lexists(d) and not os.path.isdir(d) else \
                        'check the directory permissions'
                    raise RepositoryWriteError(f'Cannot create the repository at {self.path}: '
                                               f'{d}: {e.strerror}; {what}.', self.path) from None
        if os.path.exists(os.path.join(self.path, 'meta')) and not os.path.exists(self.db_path):
            raise RepositoryFormatError(
                f'{self.path} was written by Aim itself (RocksDB format), which aimkit does '
                f'not read. Use a new directory for aimkit runs.', self.path)
        if not readonly and not os.access(self.path, os.W_OK):
            self.readonly = readonly = True  # read-only media or no permission: read only
        if not os.path.exists(self.db_path) and readonly:
            raise RepositoryError(f'{self.path} has no {DB_NAME} and cannot be written; run '
                                  f'`aim init` with write access first.', self.path)
        self.index = self.db = RepoIndex(self.db_path, create=not readonly, readonly=readonly)
        self.db.check_version()

    # paths and views -----------------------------------------------------------------------
    def lock_path(self, run_hash: str) -> str:
        return os.path.join(self.locks_dir, f'{run_hash}.lock')

    def run_journal_dir(self, run_hash: str) -> str:
        return os.path.join(self.journal_dir, run_hash)

    def run_data(self, run_hash: str) -> RunData:
        return RunData(self.db, run_hash)

    @property
    def blobs(self):
        """Where this repository keeps the bytes of rich objects (aim/storage/blobs.py)."""
        from aim.storage.blobs import blob_store
        return blob_store(self.db)

    def open_run_file(self, run_hash: str) -> RunData:
        data = self.run_data(run_hash)
        if not data.exists():
            raise MissingRunError(f'Cannot find run {run_hash!r} in the repository at '
                                  f'{self.root}.', run_hash)
        return data

    # listing -------------------------------------------------------------------------------
    def run_exists(self, run_hash: str) -> bool:
        return self.run_data(run_hash).exists()

    def list_run_hashes(self) -> list[str]:
        return self.db.data_run_hashes()

    def is_active(self, run_hash: str) -> bool:
        if locks.is_locked(self.lock_path(run_hash)):
            return True
        # a run tracked through `aim server`: live while its client's batches keep coming
        from aim.remote.ingest import live_stream_runs
        return bool(live_stream_runs(self.db, run_hash))

    def active_run_hashes(self) -> list[str]:
        try:
            names = os.listdir(self.locks_dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names
                      if n.endswith('.lock') and locks.is_locked(os.path.join(self.locks_dir, n)))

    def set_props_at_rest(self, run_hash: str, props: dict[str, Any]) -> tuple[dict, dict]:
        """Change the props of a run no process writes (``repo.get_run(h).archived = True``),
        under its write lock, so that no writer can start meanwhile and later overwrite
        them. Returns (all props now, the changes written)."""
        if self.readonly:
            raise RepositoryWriteError(
                f'The repository at {self.root} was opened read-only; the props of run '
                f'{run_hash} cannot be changed. Open it with Repo(path) instead.', self.path)
        lock = self.lock_path(run_hash)
        acquired, pid = locks.try_acquire(lock)
        if not acquired:
            who = 'a Run of this process' if pid == os.getpid() else f'process {pid}'
            raise RunLockedError(
                f'Run {run_hash} is open for writing by {who}; change its props through that '
                f'Run, or once it has ended.', run_hash, pid)
        try:
            return self._write_props(run_hash, props)
        finally:
            locks.release(lock)

    def _write_props(self, run_hash: str, props: dict[str, Any]) -> tuple[dict, dict]:
        data = self.run_data(run_hash)
        changes = {**props, 'updated_at': time.time()}
        with self.db.write() as conn:
            self.db.lock_run(conn, run_hash)
            current = {k: json.loads(v) for k, v in conn.execute(
                "SELECT key, value FROM run_props WHERE run_hash=? AND key != 'params'",
                (run_hash,))}
            row = conn.execute("SELECT value FROM run_props WHERE run_hash=? AND key='params'",
                               (run_hash,)).fetchone()
            current.update(changes)
            data.put_props(conn, changes)
            RepoIndex.upsert_run(conn, index_row(run_hash, current, row[0] if row else '{}'))
        return current, changes

    def writer_pid(self, run_hash: str) -> int | None:
        """The process holding the run's write lock, if one does."""
        return locks.holder_pid(self.lock_path(run_hash))

    @contextlib.contextmanager
    def batch_lock(self, run_hash: str):
        """The run's write lock while a spool batch is applied (aim/remote/ingest.py):
        other server processes wait for it; a local process writing the run makes it fail
        with RunLockedError. A journal a dead local writer left is folded first."""
        lock = self.lock_path(run_hash)
        deadline = time.monotonic() + BATCH_LOCK_WAIT_S
        while True:
            acquired, pid = locks.try_acquire(lock)
            if acquired:
                break
            if time.monotonic() > deadline:
                raise RunLockedError(f'Run {run_hash} is being written by process {pid} on the '
                                     f'server; its batches wait until that process closes it.',
                                     run_hash, pid)
            time.sleep(0.01)
        try:
            if os.path.isdir(self.run_journal_dir(run_hash)):
                self._fold_journal(run_hash, self.run_journal_dir(run_hash), mark_ended=False)
            yield
        finally:
            locks.release(lock)

    # recovery ------------------------------------------------------------------------------
    def _refuse_lost_database(self, create: bool) -> None:
        """A repository whose database is gone (missing or 0 bytes) while its journals and
        locks remain lost its runs; creating an empty database in its place would hide
        that, and replaying would then be the only copy of their points. Refused unless
        the caller asks for a new database (``create``), which keeps the journals' points."""
        try:
            size = os.path.getsize(self.db_path)
        except OSError:
            size = 0
        if size:
            return
        leftovers = _repository_leftovers(self.path)
        if not leftovers:
            return  # a fresh (or never finished) repository: created as usual
        if create and not self.readonly:
            if os.path.exists(self.db_path):
                os.unlink(self.db_path)  # 0 bytes: SQLite must create it (auto_vacuum)
            # a log left by the lost database must not be replayed into the new one
            from aim.storage.recovery import quarantine_files
            quarantine_files(self.path, '_database', [self.db_path + '-wal',
                                                      self.db_path + '-shm'],
                             [f'{DB_NAME} was missing or empty; a new one was created and its '
                              f'old write-ahead log set aside here'])
            return
        runs = sorted({n for n in leftovers if not n.startswith('.')})
        named = ', '.join(runs[:5]) + (', ...' if len(runs) > 5 else '')
        raise RepositoryDatabaseMissingError(
            f'The repository database is gone ({self.db_path} is '
            f'{"empty" if os.path.exists(self.db_path) else "missing"} while the journals and '
            f'locks of runs {named} remain). Restore {DB_NAME} from a backup if you '
            f'have one. Otherwise start a new database that keeps the points still in the '
            f'journals (the runs\' params and points saved before are lost) with '
            f'`python -c "import aim; aim.Repo({self.root!r}, init=True)"`.', self.db_path)

    def recover_dead_runs(self) -> list[str]:
        """Fold the journals left by dead writers; returns the hashes recovered.

        One run's journal never stops the others or the open: a failure is a warning and
        the journal stays for the next try."""
        from aim.storage.recovery import journal_entry_problem
        if self.readonly:
            self._warn_unrecovered()
            return []
        try:
            hashes = sorted(os.listdir(self.journal_dir))
        except OSError:
            return []
        recovered = []
        for run_hash in hashes:
            if journal_entry_problem(self, run_hash) is not None:
                continue   # not a run journal: left as it is, named by `aim storage check`
            try:
                if self.recover_run(run_hash):
                    recovered.append(run_hash)
            except Exception as exc:  # unwritable, disk full, damaged beyond reading
                from aim.storage.recovery import warn_recovery_failed
                warn_recovery_failed(run_hash, exc)
        return recovered

    _warned_unrecovered = False

    def _warn_unrecovered(self) -> None:
        """A read-only open cannot fold a dead writer's journal: say so, once."""
        if self._warned_unrecovered:
            return
        self._warned_unrecovered = True
        from aim.storage.recovery import unrecovered_journals
        pending = unrecovered_journals(self)
        if pending:
            import warnings
            named = ', '.join(f'{h} ({n} points)' for h, n in pending[:5])
            warnings.warn(
                f'aim: runs {named}{", ..." if len(pending) > 5 else ""} have points in the '
                f'journal of a writer that died, which this read-only open cannot fold into '
                f'the database, so they are not shown. Opening the repository once with write '
                f'access (e.g. `aim runs ls --repo {self.root}` as its owner) recovers them.',
                RuntimeWarning, stacklevel=3)

    def recover_run(self, run_hash: str) -> bool:
        from aim.storage.recovery import journal_entry_problem, quarantine_files
        jdir = self.run_journal_dir(run_hash)
        lock = self.lock_path(run_hash)
        if self.readonly or journal_entry_problem(self, run_hash) is not None or \
                locks.held_here(lock):
            return False
        problem = locks.path_problem(lock)
        if problem is not None:
            # no process can lock such a path, so no live writer is behind it: the thing
            # itself (a link is moved, never what it names) goes to quarantine
            quarantine_files(self.path, run_hash, [lock],
                             [f'locks/{run_hash}.lock {problem}; it was moved here and a lock '
                              f'file made again'])
        acquired, _ = locks.try_acquire(lock)
        if not acquired:
            return False
        try:
            if not os.path.isdir(jdir):
                return False
            self._fold_journal(run_hash, jdir, mark_ended=True)
            return True
        finally:
            locks.release(lock)

    def _fold_journal(self, run_hash: str, jdir: str, mark_ended: bool) -> list[str]:
        """Replay a dead writer's journal into the database (idempotent), then drop it;
        see aim/storage/recovery.py. Returns the problems found in it."""
        from aim.storage.recovery import recover_journal
        return recover_journal(self, run_hash, jdir, mark_ended)

    # index maintenance -----------------------------------------------------------------------
    @staticmethod
    def _index_run(conn, data: RunData) -> None:
        """Copy one run's props and params into its ``runs`` index row (inside a txn)."""
        props = {k: json.loads(v) for k, v in conn.execute(
            "SELECT key, value FROM run_props WHERE run_hash=? AND key != 'params'",
            (data.run_hash,))}
        row = conn.execute("SELECT value FROM run_props WHERE run_hash=? AND key='params'",
                           (data.run_hash,)).fetchone()
        RepoIndex.upsert_run(conn, index_row(data.run_hash, props, row[0] if row else '{}'))

    def index_row_from_data(self, run_hash: str) -> dict[str, Any]:
        """The index row of a run, built from its data (and stored, if writable)."""
        data = self.run_data(run_hash)
        if not self.readonly:
            with self.db.write() as conn:
                self._index_run(conn, data)
            row = self.db.run_row(run_hash)
            if row is not None:
                return row
        return index_row(run_hash, data.get_props(), data.get_params_text() or '{}')

    def _recompute_summaries(self, conn, run_hash: str, read=None) -> None:
        """Series summaries of a run from its chunks, written with ``conn``; the chunks
        are read with ``read`` (default: ``conn``)."""
        import numpy as np

        from aim.storage.runfile import decode_series
        read = read or conn
        ids = [r[0] for r in read.execute('SELECT id FROM series WHERE run_hash=?', (run_hash,))]
        for sid in ids:
            rows = read.execute('SELECT seq, n, steps, vals, epochs, times FROM chunks '
                                'WHERE series_id=? ORDER BY seq', (sid,)).fetchall()
            steps, vals, _, times = decode_series(rows)
            if not len(steps):
                conn.execute('UPDATE series SET count=0, first_step=NULL, last_step=NULL, '
                             'last=NULL, last_time=NULL, min=NULL, max=NULL WHERE id=?', (sid,))
                continue
            f = vals.astype(np.float64)
            conn.execute('UPDATE series SET count=?, first_step=?, last_step=?, last=?, '
                         'last_time=?, min=?, max=?, dtype=? WHERE id=?',
                         (len(steps), int(steps[0]), int(steps[-1]), _real(vals[-1].item()),
                          float(times[-1]), _real(np.fmin.reduce(f).item()),
                          _real(np.fmax.reduce(f).item()),
                          'int' if vals.dtype.kind == 'i' else 'float', sid))

    @staticmethod
    def _rebuild_overviews(conn, run_hash: str, read=None) -> None:
        """Write the overview of every chunk of a run again (see overview.py), with
        ``conn``; the chunks are read with ``read`` (default: ``conn``)."""
        from aim.storage import chunks as codec
        from aim.storage import overview
        rows = (read or conn).execute(
            'SELECT c.series_id, c.seq, c.n, c.steps, c.vals, c.times '
            'FROM chunks c JOIN series s ON s.id = c.series_id '
            'WHERE s.run_hash=?', (run_hash,)).fetchall()
        new_rows = [overview.row(sid, seq, codec.decode_column('steps', b_steps, n),
                                 codec.decode_column('values', b_vals, n),
                                 codec.decode_column('times', b_times, n), b_steps, b_vals)
                    for sid, seq, n, b_steps, b_vals, b_times in rows]
        conn.execute('DELETE FROM overviews WHERE series_id IN '
                     '(SELECT id FROM series WHERE run_hash=?)', (run_hash,))
        conn.executemany(overview.INSERT, new_rows)

    def reindex(self, progress=None, damaged: list | None = None) -> int:
        """Rebuild the index (``runs`` rows, series summaries, chunk overviews) from the
        run data, in one transaction (see aim/storage/reindex.py); returns how many runs
        were indexed. Runs whose points or props cannot be read are appended to
        ``damaged`` as (hash, reason)."""
        from aim.storage.reindex import reindex_repository
        report = reindex_repository(self, progress)
        if damaged is not None:
            damaged.extend(report.skipped + report.damaged)
        return report.reindexed

    # deleting and copying ----------------------------------------------------------------------
    def delete_run(self, run_hash: str) -> bool:
        if not self.run_exists(run_hash) and self.db.run_row(run_hash) is None:
            return False
        from aim.remote.ingest import live_stream_runs
        if live_stream_runs(self.db, run_hash):
            raise RunLockedError(f'Run {run_hash} is being tracked through aim server by a '
                                 f'live client; close that run (or wait for it to finish) '
                                 f'before deleting it.', run_hash)
        lock = self.lock_path(run_hash)
        acquired, pid = locks.try_acquire(lock)
        if not acquired:
            raise RunLockedError(f'Run {run_hash} is being written by process {pid}; stop it '
                                 f'(or wait for it to finish) before deleting the run.',
                                 run_hash, pid)
        try:
            # the journal first: a kill between the two leaves the run with its committed
            # points, never a journal of a run the database no longer has
            import shutil
            shutil.rmtree(self.run_journal_dir(run_hash), ignore_errors=True)
            with self.db.write() as conn:
                RepoIndex.delete_run(conn, run_hash)
        finally:
            locks.release(lock)
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass
        self.reclaim_space()
        return True

    def reclaim_space(self) -> None:
        """Return the pages of deleted data to the file system."""
        with self.db.lock:
            conn = self.db.conn
            # executescript steps the pragma to completion; execute() frees one page a call
            conn.executescript('PRAGMA incremental_vacuum;')
            # the freed pages leave the file only once the WAL is folded back into it
            conn.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()

    # rich objects ------------------------------------------------------------------------------
    def object_series_rows(self, run_hash: str | None = None,
                           kind: str | None = None) -> list[dict]:
        from aim.storage.objects import list_series
        return list_series(self.db, run_hash, kind)

    def object_points(self, series_id: int, first_step: int | None = None,
                      last_step: int | None = None) -> list[tuple]:
        from aim.storage.objects import read_points
        return read_points(self.db, series_id, first_step, last_step, as_tracked=True)

    def copy_run_to(self, run_hash: str, dest: RepoStore) -> None:
        if not self.run_exists(run_hash):
            raise MissingRunError(f'Cannot find run {run_hash!r} in {self.root}.', run_hash)
        if self.is_active(run_hash):
            raise RunLockedError(f'Run {run_hash} is still being written; copy it once it has '
                                 f'finished.', run_hash, self.writer_pid(run_hash))
        if dest.run_exists(run_hash):
            raise RepositoryError(f'Run {run_hash} already exists in {dest.root}.', dest.root)
        src = self.db
        props = src.query('SELECT key, value FROM run_props WHERE run_hash=?', (run_hash,))
        series = src.query('SELECT id, name, context, count, first_step, last_step, last, min, '
                           'max, last_time, dtype FROM series WHERE run_hash=?', (run_hash,))
        logs = src.query('SELECT id, time, line FROM logs WHERE run_hash=?', (run_hash,))
        from aim.storage import objects
        from aim.storage.blobs import copy_blobs
        digests = {d for (d,) in src.query(
            'SELECT DISTINCT b.digest FROM object_blobs b JOIN object_series s ON '
            's.id = b.series_id WHERE s.run_hash=?', (run_hash,))}
        if digests and self.blobs.location != dest.blobs.location:
            copy_blobs(self.blobs, dest.blobs, sorted(digests))   # before the rows use them
        with dest.db.write() as conn:
            objects.copy_run(src, conn, run_hash)
            conn.executemany('INSERT INTO run_props VALUES(?, ?, ?)',
                             [(run_hash, k, v) for k, v in props])
            for sid, *rest in series:
                cur = conn.execute('INSERT INTO series(run_hash, name, context, count, '
                                   'first_step, last_step, last, min, max, last_time, dtype) '
                                   'VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', (run_hash, *rest))
                new_id = cur.lastrowid
                chunks = src.query('SELECT seq, first_step, last_step, n, steps, vals, epochs, '
                                   'times FROM chunks WHERE series_id=?', (sid,))
                conn.executemany('INSERT INTO chunks VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)',
                                 [(new_id, *c) for c in chunks])
                from aim.storage import overview
                overviews = src.query(f'SELECT {overview.COLUMNS} FROM overviews '
                                      f'WHERE series_id=?', (sid,))
                conn.executemany(overview.INSERT, [(new_id, *o[1:]) for o in overviews])
            conn.executemany('INSERT INTO logs VALUES(?, ?, ?, ?)',
                             [(run_hash, *row) for row in logs])
            dest._index_run(conn, dest.run_data(run_hash))

    def close(self) -> None:
        self.db.close()


def _repository_leftovers(aim_dir: str) -> list[str]:
    """Run hashes (journals, locks) and other files that only a used repository holds."""
    found = []
    for sub, suffix in (('journal', ''), ('locks', '.lock')):
        try:
            found += [n[:len(n) - len(suffix)] for n in os.listdir(os.path.join(aim_dir, sub))
                      if n.endswith(suffix)]
        except OSError:
            pass
    try:
        names = os.listdir(aim_dir)
    except OSError:
        names = []
    found += ['.' + n for n in names if n not in ('journal', 'locks', DB_NAME)]
    return found


def with_savepoint(conn, work) -> None:
    """Run ``work()`` inside a savepoint: on an exception its writes roll back, the
    enclosing transaction's stay."""
    conn.execute('SAVEPOINT work')
    try:
        work()
    except BaseException:
        conn.execute('ROLLBACK TO work')
        conn.execute('RELEASE work')
        raise
    conn.execute('RELEASE work')


def _real(x):
    if x is None:
        return None
    x = float(x)
    return None if x != x else x


def index_row(run_hash: str, props: dict[str, Any], params_text: str) -> dict[str, Any]:
    return {
        'hash': run_hash,
        'name': props.get('name'),
        'experiment': props.get('experiment'),
        'description': props.get('description'),
        'tags': json.dumps(props.get('tags') or [], ensure_ascii=False),
        'archived': 1 if props.get('archived') else 0,
        'creation_time': props.get('creation_time'),
        'end_time': props.get('end_time'),
        'updated_at': props.get('updated_at'),
        'params': params_text,
    }


class LiveRun:
    """A run open for writing in this process: its lock, its data and its journal writer."""

    def __init__(self, store: RepoStore, run_hash: str, *, create: bool,
                 initial_props: dict[str, Any] | None = None):
        from aim.storage.folder import SeriesFolder
        from aim.storage.writer import RunWriter, in_flush_thread
        self._in_flush_thread = in_flush_thread
        self.store = store
        self.run_hash = run_hash
        self._pid = os.getpid()
        if store.readonly:
            raise RepositoryWriteError(
                f'The repository at {store.root} cannot be written (read-only file system, no '
                f'write permission, or opened read_only=True); runs can only be read. '
                f'Track into a writable directory instead.', store.path)
        lock = store.lock_path(run_hash)
        try:
            acquired, pid = locks.try_acquire(lock)
        except OSError as e:
            raise RepositoryWriteError(f'Cannot write to the repository at {store.root}: '
                                       f'{e.strerror}. Check its permissions.',
                                       store.path) from None
        if not acquired:
            who = 'this process' if pid == os.getpid() else f'process {pid}'
            raise RunLockedError(
                f'Run {run_hash} is already open for writing by {who}. Close that Run first, '
                f'or open this one with read_only=True.', run_hash, pid)
        self.lock_path = lock
        try:
            jdir = store.run_journal_dir(run_hash)
            if os.path.islink(jdir):   # never written, folded or deleted through
                raise RepositoryError(
                    f'{jdir} is a symbolic link to {os.readlink(jdir)}, not the journal of '
                    f'run {run_hash}; it is never followed. Move it out of '
                    f'{store.journal_dir}, then try again.', jdir)
            if not create and os.path.isdir(jdir):
                from aim.storage.journal import writer_alive
                if writer_alive(jdir):  # its lock file was deleted under it
                    raise RunLockedError(
                        f'Run {run_hash} is already open for writing by another process '
                        f'(its lock file in {store.locks_dir} was removed). Close that Run '
                        f'first, or open this one with read_only=True.', run_hash)
                store._fold_journal(run_hash, jdir, mark_ended=False)
            self.data = self.runfile = store.run_data(run_hash)
            props = dict(initial_props or {})
            props['end_time'] = None
            props['updated_at'] = time.time()
            self.props = {} if create else self.data.get_props()
            self.props.update(props)
            params_text = None if create else self.data.get_params_text()
            with store.db.write() as conn:
                self.data.put_props(conn, props)
                if params_text is None:
                    params_text = '{}'
                    self.data.put_params_text(conn, params_text)
                RepoIndex.upsert_run(conn, index_row(run_hash, self.props, params_text))
            self.params_text = params_text
            self._pending_logs: list[tuple[float, str]] = []
            self._logs_lock = threading.Lock()
            self._next_log_id: int | None = None
            self._last_sync = time.time()
            self._final_props: dict[str, Any] = {}
            self.folder = SeriesFolder(self.data)
            from aim.storage.objects import ObjectSink
            self.writer = RunWriter(run_hash, jdir, self.folder, self._commit_flush,
                                    objects=ObjectSink(store, run_hash))
        except BaseException:
            locks.release(lock)
            raise

    def track(self, *args, **kwargs):  # the Run binds writer.track directly; this is for tools
        return self.writer.track(*args, **kwargs)

    def _commit_flush(self, fold) -> None:
        with self._logs_lock:
            logs, self._pending_logs = self._pending_logs, []
        now = time.time()
        try:
            with self.store.db.write() as conn:
                changed = fold(conn)
                if logs:
                    if self._next_log_id is None:
                        self._next_log_id = conn.execute(
                            'SELECT COALESCE(MAX(id), -1) + 1 FROM logs WHERE run_hash=?',
                            (self.run_hash,)).fetchone()[0]
                    first: int = self._next_log_id
                    conn.executemany('INSERT OR REPLACE INTO logs VALUES(?, ?, ?, ?)',
                                     [(self.run_hash, first + i, t, line)
                                      for i, (t, line) in enumerate(logs)])
                    self._next_log_id = first + len(logs)
                if changed or logs:
                    self.data.put_props(conn, {'updated_at': now})
                    conn.execute('UPDATE runs SET updated_at=? WHERE hash=?', (now, self.run_hash))
                if self._final_props:  # close(): the end time commits with the last points
                    self.data.put_props(conn, self._final_props)
                    self.props.update(self._final_props)
                    RepoIndex.upsert_run(conn, index_row(self.run_hash, self.props,
                                                         self.params_text))
        except BaseException:
            with self._logs_lock:
                self._pending_logs = logs + self._pending_logs
            raise
        if changed or logs:
            self.props['updated_at'] = now
        if now - self._last_sync >= SYNC_INTERVAL_S and \
                self._in_flush_thread():
            # WAL commits with synchronous=NORMAL reach the disk at checkpoints: one a
            # second, off the training thread, bounds what a power cut can take
            self._last_sync = now
            with self.store.db.lock:
                self.store.db.conn.execute('PRAGMA wal_checkpoint(PASSIVE)')

    def add_log_lines(self, lines: list[tuple[float, str]]) -> None:
        with self._logs_lock:
            self._pending_logs.extend(lines)

    def set_props(self, props: dict[str, Any]) -> None:
        with self.store.db.write() as conn:
            self.data.put_props(conn, props)
            self.props.update(props)
            RepoIndex.upsert_run(conn, index_row(self.run_hash, self.props, self.params_text))

    def set_params_text(self, params_text: str) -> None:
        with self.store.db.write() as conn:
            self.data.put_params_text(conn, params_text)
            RepoIndex.upsert_run(conn, index_row(self.run_hash, self.props, params_text))
        self.params_text = params_text

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        """Flush everything, record the end time, drop the journal, release the lock."""
        if os.getpid() != self._pid:
            return
        try:
            self._final_props = {'end_time': time.time()}
            self.writer.close()
        finally:
            self._final_props = {}
            locks.release(self.lock_path)


__all__ = ['AIM_DIR', 'DB_NAME', 'FORMAT_VERSION', 'LiveRun', 'RepoStore']
