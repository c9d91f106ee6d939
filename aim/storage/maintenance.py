"""Repository upkeep: verify run files, close crashed runs, reclaim disk space.

Used by ``aim storage check``, ``aim storage vacuum`` and ``aim runs close``. Each run is
handled on its own, so one damaged run file is reported and never stops the others.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Callable

from aim.errors import MissingRunError, RepositoryError, RunLockedError
from aim.storage import locks
from aim.storage.repository import AIM_DIR, RepoStore
from aim.storage.runfile import FORMAT_VERSION, RunFile
from aim.storage.sqlite import translate

Progress = Callable[[str], None]

# A leftover `<hash>.db.tmp` (an interrupted copy) older than this is garbage.
STALE_TMP_AGE_S = 600


# -- check -------------------------------------------------------------------------------
@dataclass
class RunCheck:
    run_hash: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class CheckReport:
    runs: list[RunCheck]
    index_problems: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> list[RunCheck]:
        return [r for r in self.runs if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.index_problems


def check_run_file(path: str, run_hash: str, *, thorough: bool = True) -> RunCheck:
    """Read a run file end to end without changing it; list what is wrong with it."""
    result = RunCheck(run_hash)
    if not os.path.exists(path):
        result.problems.append('the run file is missing')
        return result
    if os.path.getsize(path) == 0:
        result.problems.append('the run file is empty')
        return result
    try:
        conn = sqlite3.connect(f'file:{path}?mode=ro', uri=True, timeout=60)
    except sqlite3.Error as exc:
        result.problems.append(f'cannot be opened: {exc}')
        return result
    try:
        _check_open_run_file(conn, path, result, thorough)
    finally:
        conn.close()
    return result


def _check_open_run_file(conn: sqlite3.Connection, path: str, result: RunCheck,
                         thorough: bool) -> None:
    try:
        pragma = 'integrity_check' if thorough else 'quick_check'
        verdict = [row[0] for row in conn.execute(f'PRAGMA {pragma}(20)')]
        if verdict != ['ok']:
            result.problems.append('SQLite reports damage: ' + '; '.join(verdict[:3]))
            return
        rows = conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchall()
    except sqlite3.Error as exc:
        result.problems.append(f'not a readable run file: {exc}')
        return
    if not rows or not str(rows[0][0]).isdigit():
        result.problems.append('no storage format version (not an aimkit run file)')
        return
    if int(rows[0][0]) > FORMAT_VERSION:
        result.problems.append(f'format version {rows[0][0]} is newer than this aimkit reads '
                               f'({FORMAT_VERSION}); upgrade aimkit')
        return
    try:
        for key, value in conn.execute('SELECT key, value FROM props'):
            try:
                json.loads(value)
            except ValueError:
                result.problems.append(f'property {key!r} is not valid JSON')
    except sqlite3.Error as exc:
        result.problems.append(f'properties unreadable: {exc}')
    if thorough:
        _check_series_data(path, result)


def _check_series_data(path: str, result: RunCheck) -> None:
    runfile = RunFile(path, readonly=True)
    try:
        for row in runfile.series_rows():
            try:
                runfile.read_series(row['id'])
            except Exception as exc:  # zlib.error, ValueError from a bad blob, ...
                result.problems.append(f'series {row["name"]!r} {row["context"]}: data cannot '
                                       f'be decoded ({type(exc).__name__}: {exc})')
    except RepositoryError as exc:
        result.problems.append(str(exc))
    finally:
        runfile.close()


def check_repository(root: str, *, thorough: bool = True,
                     progress: Progress | None = None) -> CheckReport:
    """Check every run file under ``root/.aim`` and whether the index agrees with them."""
    runs_dir = os.path.join(root, AIM_DIR, 'runs')
    hashes = list_run_files(root)
    report = CheckReport([])
    for run_hash in hashes:
        report.runs.append(check_run_file(os.path.join(runs_dir, f'{run_hash}.db'), run_hash,
                                          thorough=thorough))
        if progress:
            progress(run_hash)
    report.index_problems = _check_index(root, set(hashes))
    return report


def _check_index(root: str, run_files: set[str]) -> list[str]:
    index_path = os.path.join(root, AIM_DIR, 'index.db')
    try:
        conn = sqlite3.connect(f'file:{index_path}?mode=ro', uri=True, timeout=60)
        try:
            verdict = [row[0] for row in conn.execute('PRAGMA quick_check(5)')]
            if verdict != ['ok']:
                return ['index.db is damaged (' + '; '.join(verdict[:2]) + '); run '
                        '`aim storage reindex` to rebuild it from the run files']
            indexed = {row[0] for row in conn.execute('SELECT hash FROM runs')}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [f'index.db cannot be read ({exc}); run `aim storage reindex` to rebuild it']
    problems = []
    missing = sorted(run_files - indexed)
    orphans = sorted(indexed - run_files)
    if missing:
        problems.append(f'{len(missing)} run(s) not in the index ({", ".join(missing[:5])}'
                        f'{", ..." if len(missing) > 5 else ""}); run `aim storage reindex`')
    if orphans:
        problems.append(f'{len(orphans)} indexed run(s) have no run file '
                        f'({", ".join(orphans[:5])}{", ..." if len(orphans) > 5 else ""}); '
                        f'run `aim storage reindex`')
    return problems


def list_run_files(root: str) -> list[str]:
    runs_dir = os.path.join(root, AIM_DIR, 'runs')
    try:
        return sorted(name[:-3] for name in os.listdir(runs_dir) if name.endswith('.db'))
    except FileNotFoundError:
        return []


# -- close -------------------------------------------------------------------------------
def close_dead_run(store: RepoStore, run_hash: str) -> bool:
    """Mark a run whose writer died as finished; ``False`` if it already was.

    Its unsaved journal is folded in and its end time becomes its last sign of life.
    A run that a live process is writing is refused with :class:`RunLockedError`.
    """
    if not store.run_exists(run_hash):
        raise MissingRunError(f'Cannot find run {run_hash!r} in the repository at '
                              f'{store.root}.', run_hash)
    lock = store.lock_path(run_hash)
    acquired, pid = locks.try_acquire(lock)
    if not acquired:
        raise RunLockedError(
            f'Run {run_hash} is being written by a live process ({pid}); it closes itself '
            f'when that process ends. Stop the process to close the run now.', run_hash, pid)
    try:
        jdir = store.run_journal_dir(run_hash)
        if os.path.isdir(jdir):
            store._fold_journal(run_hash, jdir, mark_ended=True)
            return True
        runfile = store.open_run_file(run_hash)
        try:
            props = runfile.get_props()
            if props.get('end_time') is not None:
                store.index_run(run_hash, runfile)  # the index may still show it open
                return False
            last_sign = [t for t in (props.get('updated_at'), props.get('creation_time')) if t]
            with runfile.write() as conn:
                RunFile.put_props(conn, {'end_time': max(last_sign) if last_sign
                                         else time.time()})
            store.index_run(run_hash, runfile)
            return True
        finally:
            runfile.close()
    finally:
        locks.release(lock)


# -- vacuum ------------------------------------------------------------------------------
@dataclass
class VacuumReport:
    bytes_before: int
    bytes_after: int = 0
    vacuumed: list[str] = field(default_factory=list)
    skipped_active: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    removed_files: int = 0

    @property
    def bytes_freed(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)


def vacuum_repository(store: RepoStore, progress: Progress | None = None) -> VacuumReport:
    """Compact every run file nobody is writing, the index, and remove leftovers."""
    report = VacuumReport(bytes_before=directory_size(store.path))
    store.recover_dead_runs()  # folds journals of dead writers; drops orphan journals
    for run_hash in store.list_run_hashes():
        _vacuum_run(store, run_hash, report)
        if progress:
            progress(run_hash)
    report.removed_files += _remove_leftovers(store)
    try:
        _vacuum_database(store.index.conn)
    except sqlite3.Error as exc:
        report.failed['index.db'] = str(translate(exc, store.index_path))
    report.bytes_after = directory_size(store.path)
    return report


def _vacuum_run(store: RepoStore, run_hash: str, report: VacuumReport) -> None:
    lock = store.lock_path(run_hash)
    acquired, _ = locks.try_acquire(lock)
    if not acquired:  # a live writer: its file is in use, leave it alone
        report.skipped_active.append(run_hash)
        return
    try:
        conn = sqlite3.connect(store.run_path(run_hash), isolation_level=None, timeout=60)
        try:
            _vacuum_database(conn)
        finally:
            conn.close()
        report.vacuumed.append(run_hash)
    except sqlite3.Error as exc:
        report.failed[run_hash] = str(translate(exc, store.run_path(run_hash)))
    finally:
        locks.release(lock)


def _vacuum_database(conn: sqlite3.Connection) -> None:
    conn.execute('VACUUM')
    conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')


def _remove_leftovers(store: RepoStore) -> int:
    """Lock files of deleted runs and temporary files of interrupted copies."""
    removed = 0
    existing = set(store.list_run_hashes())
    try:
        lock_names = os.listdir(store.locks_dir)
    except FileNotFoundError:
        lock_names = []
    for name in lock_names:
        path = os.path.join(store.locks_dir, name)
        if name.endswith('.lock') and name[:-5] not in existing \
                and not locks.held_here(path) and not locks.is_locked(path):
            removed += _unlink(path)
    now = time.time()
    for name in os.listdir(store.runs_dir):
        path = os.path.join(store.runs_dir, name)
        if name.endswith('.tmp') and now - _mtime(path) > STALE_TMP_AGE_S:
            removed += _unlink(path)
    for name in os.listdir(store.journal_dir) if os.path.isdir(store.journal_dir) else []:
        path = os.path.join(store.journal_dir, name)
        if name not in existing and not locks.is_locked(store.lock_path(name)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def directory_size(path: str) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:
                pass
    return total


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return time.time()


def _unlink(path: str) -> int:
    try:
        os.unlink(path)
        return 1
    except OSError:
        return 0


__all__ = ['CheckReport', 'RunCheck', 'VacuumReport', 'check_repository', 'check_run_file',
           'close_dead_run', 'directory_size', 'list_run_files', 'vacuum_repository']
