"""The repository as a whole: layout, opening, run files, live runs, recovery, reindex."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from typing import Any

from aim.errors import (MissingRunError, RepositoryError, RepositoryFormatError,
                        RepositoryNotFoundError, RepositoryWriteError, RunLockedError)
from aim.storage import journal as jr
from aim.storage import locks
from aim.storage.encoding import dumps_params
from aim.storage.index import RepoIndex
from aim.storage.runfile import RunFile
from aim.storage.sqlite import translate

AIM_DIR = '.aim'
FORMAT_VERSION = 1


class RepoStore:
    """Everything under one ``.aim`` directory."""

    def __init__(self, root: str, *, create: bool = False, readonly: bool = False):
        self.root = os.path.abspath(root)
        self.path = os.path.join(self.root, AIM_DIR)
        self.readonly = readonly
        self.index_path = os.path.join(self.path, 'index.db')
        self.runs_dir = os.path.join(self.path, 'runs')
        self.journal_dir = os.path.join(self.path, 'journal')
        self.locks_dir = os.path.join(self.path, 'locks')
        exists = os.path.isdir(self.path)
        if not exists and not create:
            raise RepositoryNotFoundError(
                f'No aim repository at {self.root} (no {AIM_DIR} directory). Run `aim init` '
                f'there, or pass init=True.', self.root)
        if create and not readonly:
            try:
                for d in (self.path, self.runs_dir, self.journal_dir, self.locks_dir):
                    os.makedirs(d, exist_ok=True)
            except OSError as e:
                raise RepositoryWriteError(f'Cannot create the repository at {self.path}: '
                                           f'{e.strerror}. Check the directory permissions.',
                                           self.path) from None
        if os.path.exists(os.path.join(self.path, 'meta')) and \
                not os.path.exists(self.index_path):
            raise RepositoryFormatError(
                f'{self.path} was written by Aim itself (RocksDB format), which aimkit does '
                f'not read. Use a new directory for aimkit runs.', self.path)
        if not readonly and not os.access(self.path, os.W_OK):
            self.readonly = readonly = True  # read-only media or no permission: read only
        new_index = not os.path.exists(self.index_path)
        if new_index and readonly:
            raise RepositoryError(f'{self.path} has no index.db and cannot be written; '
                                  f'run `aim init` with write access first.', self.path)
        self.index = RepoIndex(self.index_path, create=not readonly, readonly=readonly)
        self.index.check_version()
        if new_index and os.listdir(self.runs_dir):
            self.reindex()

    # paths ---------------------------------------------------------------------------
    def run_path(self, run_hash: str) -> str:
        return os.path.join(self.runs_dir, f'{run_hash}.db')

    def lock_path(self, run_hash: str) -> str:
        return os.path.join(self.locks_dir, f'{run_hash}.lock')

    def run_journal_dir(self, run_hash: str) -> str:
        return os.path.join(self.journal_dir, run_hash)

    # listing -------------------------------------------------------------------------
    def run_exists(self, run_hash: str) -> bool:
        return os.path.exists(self.run_path(run_hash))

    def list_run_hashes(self) -> list[str]:
        try:
            return sorted(n[:-3] for n in os.listdir(self.runs_dir) if n.endswith('.db'))
        except FileNotFoundError:
            return []

    def is_active(self, run_hash: str) -> bool:
        return locks.is_locked(self.lock_path(run_hash))

    def active_run_hashes(self) -> list[str]:
        try:
            names = os.listdir(self.locks_dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names
                      if n.endswith('.lock') and locks.is_locked(os.path.join(self.locks_dir, n)))

    def open_run_file(self, run_hash: str) -> RunFile:
        path = self.run_path(run_hash)
        if not os.path.exists(path):
            raise MissingRunError(f'Cannot find run {run_hash!r} in the repository at '
                                  f'{self.root}.', run_hash)
        return RunFile(path, readonly=self.readonly or not os.access(path, os.W_OK))

    # recovery ------------------------------------------------------------------------
    def recover_dead_runs(self) -> list[str]:
        """Fold the journals left by dead writers; returns the hashes recovered."""
        if self.readonly:
            return []
        try:
            hashes = os.listdir(self.journal_dir)
        except OSError:
            return []
        recovered = []
        for run_hash in hashes:
            try:
                if self.recover_run(run_hash):
                    recovered.append(run_hash)
            except (OSError, RepositoryError):
                continue  # unwritable or damaged: readers still see what was folded
        return recovered

    def recover_run(self, run_hash: str) -> bool:
        jdir = self.run_journal_dir(run_hash)
        lock = self.lock_path(run_hash)
        if not os.path.isdir(jdir) or locks.held_here(lock):
            return False
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

    def _fold_journal(self, run_hash: str, jdir: str, mark_ended: bool) -> None:
        from aim.storage.folder import SeriesFolder
        from aim.storage.writer import remove_journal_dir
        path = self.run_path(run_hash)
        if not os.path.exists(path):
            # the writer died before its run file was complete: nothing was acknowledged
            remove_journal_dir(jdir)
            return
        runfile = RunFile(path)
        try:
            folder = SeriesFolder(runfile)
            for sid, name, ctx in jr.read_series_lines(jdir):
                folder.register(sid, name, ctx)
            segments = [jr.Segment(jr.segment_path(jdir, n)) for n in jr.list_segments(jdir)]
            try:
                changed = []
                last_sign = None
                with runfile.write() as conn:
                    for seg in segments:
                        if seg.committed > seg.folded:
                            arrays = seg.read(seg.folded, seg.committed)
                            changed += folder.fold(conn, *arrays)
                            if len(arrays[5]):
                                last_sign = max(last_sign or 0, float(arrays[5].max()))
                    props = runfile.get_props()
                    if mark_ended and props.get('end_time') is None:
                        candidates = [t for t in (last_sign, props.get('updated_at'),
                                                  props.get('creation_time')) if t]
                        RunFile.put_props(conn, {'end_time': max(candidates) if candidates
                                                 else time.time()})
                self.index_run(run_hash, runfile)
            finally:
                for seg in segments:
                    seg.close()
            remove_journal_dir(jdir)
        finally:
            runfile.close()

    # index maintenance -----------------------------------------------------------------
    def index_run(self, run_hash: str, runfile: RunFile, recompute: bool = False) -> None:
        """Copy one run's props, params and series summaries into the index."""
        props = runfile.get_props()
        params_text = runfile.get_params_text() or '{}'
        if recompute:
            self._recompute_summaries(runfile)
        series = [(r['name'], r['context'], r['count'], r['first_step'], r['last_step'],
                   r['last'], r['min'], r['max'], r['last_time'])
                  for r in runfile.series_rows()]
        with self.index.write() as conn:
            RepoIndex.delete_run(conn, run_hash)
            RepoIndex.upsert_run(conn, index_row(run_hash, props, params_text))
            RepoIndex.upsert_series(conn, run_hash, series)

    @staticmethod
    def _recompute_summaries(runfile: RunFile) -> None:
        import numpy as np
        rows = runfile.series_rows()
        updates = []
        for r in rows:
            steps, vals, _, times = runfile.read_series(r['id'])
            if not len(steps):
                updates.append((0, None, None, None, None, None, None, r['id']))
                continue
            f = vals.astype(np.float64)
            lo, hi = np.fmin.reduce(f).item(), np.fmax.reduce(f).item()
            updates.append((len(steps), int(steps[0]), int(steps[-1]), _real(vals[-1].item()),
                            float(times[-1]), _real(lo), _real(hi), r['id']))
        if runfile.readonly:
            return
        with runfile.write() as conn:
            conn.executemany('UPDATE series SET count=?, first_step=?, last_step=?, last=?, '
                             'last_time=?, min=?, max=? WHERE id=?', updates)

    def reindex(self, progress=None) -> int:
        """Rebuild index.db from the run files. Returns the number of runs indexed."""
        self.recover_dead_runs()
        hashes = self.list_run_hashes()
        with self.index.write() as conn:
            conn.execute('DELETE FROM runs')
            conn.execute('DELETE FROM series')
        n = 0
        for run_hash in hashes:
            try:
                runfile = RunFile(self.run_path(run_hash))
            except (RepositoryError, sqlite3.Error):
                continue
            try:
                self.index_run(run_hash, runfile, recompute=True)
                n += 1
            except RepositoryError:
                pass
            finally:
                runfile.close()
            if progress:
                progress(run_hash)
        return n

    # deleting and copying ----------------------------------------------------------------
    def delete_run(self, run_hash: str) -> bool:
        if not self.run_exists(run_hash) and self.index.run_row(run_hash) is None:
            return False
        lock = self.lock_path(run_hash)
        acquired, pid = locks.try_acquire(lock)
        if not acquired:
            raise RunLockedError(f'Run {run_hash} is being written by process {pid}; stop it '
                                 f'(or wait for it to finish) before deleting the run.',
                                 run_hash, pid)
        try:
            with self.index.write() as conn:
                RepoIndex.delete_run(conn, run_hash)
            for suffix in ('', '-wal', '-shm'):
                try:
                    os.unlink(self.run_path(run_hash) + suffix)
                except FileNotFoundError:
                    pass
            shutil.rmtree(self.run_journal_dir(run_hash), ignore_errors=True)
        finally:
            locks.release(lock)
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass
        return True

    def copy_run_to(self, run_hash: str, dest: 'RepoStore') -> None:
        if not self.run_exists(run_hash):
            raise MissingRunError(f'Cannot find run {run_hash!r} in {self.root}.', run_hash)
        if self.is_active(run_hash):
            raise RunLockedError(f'Run {run_hash} is still being written; copy it once it has '
                                 f'finished.', run_hash, locks.holder_pid(self.lock_path(run_hash)))
        if dest.run_exists(run_hash):
            raise RepositoryError(f'Run {run_hash} already exists in {dest.root}.', dest.root)
        src = sqlite3.connect(self.run_path(run_hash))
        tmp = dest.run_path(run_hash) + '.tmp'
        try:
            out = sqlite3.connect(tmp)
            try:
                src.backup(out)
            finally:
                out.close()
        except sqlite3.Error as e:
            raise translate(e, tmp) from None
        finally:
            src.close()
        os.replace(tmp, dest.run_path(run_hash))
        runfile = RunFile(dest.run_path(run_hash))
        try:
            dest.index_run(run_hash, runfile)
        finally:
            runfile.close()

    def close(self) -> None:
        self.index.close()


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
    """A run open for writing in this process: its lock, run file and journal writer."""

    def __init__(self, store: RepoStore, run_hash: str, *, create: bool,
                 initial_props: dict[str, Any] | None = None):
        from aim.storage.folder import SeriesFolder
        from aim.storage.writer import RunWriter
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
                                       f'{e.strerror}. Check its permissions.', store.path) from None
        if not acquired:
            who = 'this process' if pid == os.getpid() else f'process {pid}'
            raise RunLockedError(
                f'Run {run_hash} is already open for writing by {who}. Close that Run first, '
                f'or open this one with read_only=True.', run_hash, pid)
        self.lock_path = lock
        try:
            jdir = store.run_journal_dir(run_hash)
            if not create and os.path.isdir(jdir):
                store._fold_journal(run_hash, jdir, mark_ended=False)
            self.runfile = RunFile(store.run_path(run_hash), create=create)
            props = dict(initial_props or {})
            props['end_time'] = None
            props['updated_at'] = time.time()
            self.props = {**self.runfile.get_props(), **props}
            params_text = self.runfile.get_params_text()
            with self.runfile.write() as conn:
                RunFile.put_props(conn, props)
                if params_text is None:
                    params_text = '{}'
                    RunFile.put_params_text(conn, params_text)
            self.params_text = params_text
            with store.index.write() as conn:
                RepoIndex.upsert_run(conn, index_row(run_hash, self.props, params_text))
            self._pending_logs: list[tuple[float, str]] = []
            self._logs_lock = threading.Lock()
            self.folder = SeriesFolder(self.runfile)
            self.writer = RunWriter(run_hash, jdir, self.folder, self._commit_flush)
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
            with self.runfile.write() as conn:
                changed = fold(conn)
                if logs:
                    conn.executemany('INSERT INTO logs(time, line) VALUES(?, ?)', logs)
                if changed:
                    RunFile.put_props(conn, {'updated_at': now})
        except BaseException:
            with self._logs_lock:
                self._pending_logs = logs + self._pending_logs
            raise
        if changed:
            self.props['updated_at'] = now
            with self.store.index.write() as conn:
                RepoIndex.upsert_series(conn, self.run_hash, [s.summary_row() for s in changed])
                conn.execute('UPDATE runs SET updated_at=? WHERE hash=?', (now, self.run_hash))

    def add_log_lines(self, lines: list[tuple[float, str]]) -> None:
        with self._logs_lock:
            self._pending_logs.extend(lines)

    def set_props(self, props: dict[str, Any]) -> None:
        with self.runfile.write() as conn:
            RunFile.put_props(conn, props)
        self.props.update(props)
        self._reindex_row()

    def set_params_text(self, params_text: str) -> None:
        with self.runfile.write() as conn:
            RunFile.put_params_text(conn, params_text)
        self.params_text = params_text
        self._reindex_row()

    def _reindex_row(self) -> None:
        with self.store.index.write() as conn:
            RepoIndex.upsert_run(conn, index_row(self.run_hash, self.props, self.params_text))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        """Flush everything, record the end time, drop the journal, release the lock."""
        if os.getpid() != self._pid:
            return
        try:
            self.writer.close()
            self.set_props({'end_time': time.time()})
        finally:
            self.runfile.close()
            locks.release(self.lock_path)


__all__ = ['RepoStore', 'LiveRun', 'FORMAT_VERSION', 'dumps_params']
