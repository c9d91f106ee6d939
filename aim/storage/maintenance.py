"""Repository upkeep: verify the data, close crashed runs, reclaim disk space.

Used by ``aim storage check``, ``aim storage vacuum`` and ``aim runs close``. Each run is
read on its own, so a run whose data is damaged is reported and never stops the others.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aim.errors import (
    MissingRunError,
    RepositoryDatabaseMissingError,
    RepositoryError,
    RunLockedError,
)
from aim.storage import journal as jr
from aim.storage import locks
from aim.storage.repository import AIM_DIR, DB_NAME, RepoStore
from aim.storage.runfile import FORMAT_VERSION
from aim.storage.sqlite import translate

Progress = Callable[[str], None]

# A leftover `*.tmp` file (an interrupted copy) older than this is garbage.
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
    repository_problems: list[str] = field(default_factory=list)
    # Worth doing, but nothing is wrong with the data (missing chunk overviews).
    notes: list[str] = field(default_factory=list)
    # The database file that all runs share is damaged, not only some runs' data.
    shared_database_damaged: bool = False
    # So damaged that the repository cannot be opened at all.
    unreadable: bool = False

    @property
    def damaged(self) -> list[RunCheck]:
        return [r for r in self.runs if not r.ok]

    def add_run_problem(self, run_hash: str, problem: str) -> None:
        """Record a problem of one run, merged with what was found about it already."""
        for run in self.runs:
            if run.run_hash == run_hash:
                run.problems.append(problem)
                return
        self.runs.append(RunCheck(run_hash, [problem]))

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.repository_problems


def check_database_file(path: str, *, thorough: bool = True) -> list[str]:
    """SQLite's own verdict on one database file, read-only; ``[]`` when intact."""
    if not os.path.exists(path):
        return ['the file is missing']
    if os.path.getsize(path) == 0:
        return ['the file is empty']
    try:
        conn = sqlite3.connect(f'file:{path}?mode=ro', uri=True, timeout=60)
    except sqlite3.Error as exc:
        return [f'cannot be opened: {exc}']
    try:
        pragma = 'integrity_check' if thorough else 'quick_check'
        try:
            verdict = [row[0] for row in conn.execute(f'PRAGMA {pragma}(20)')]
        except sqlite3.DatabaseError as exc:  # too damaged to even list the damage
            verdict = [str(exc)]
        if verdict != ['ok']:
            return ['SQLite reports damage: ' + '; '.join(verdict[:3])]
        rows = conn.execute("SELECT value FROM meta WHERE key='format_version'").fetchall()
    except sqlite3.Error as exc:
        return [f'not a readable aimkit database: {exc}']
    finally:
        conn.close()
    if not rows or not str(rows[0][0]).isdigit():
        return ['no storage format version (not an aimkit database)']
    if int(rows[0][0]) > FORMAT_VERSION:
        return [f'format version {rows[0][0]} is newer than this aimkit reads '
                f'({FORMAT_VERSION}); upgrade aimkit']
    return []


def check_run_data(store: RepoStore, run_hash: str, *, thorough: bool = True,
                   index_problems: list[str] | None = None) -> list[str]:
    """Read one run's props, params and (if ``thorough``) every point; list what fails.

    Points are compared with each series' summary: fewer points than it counts, or a
    step range that falls short of it, means chunks were lost (a problem of the run). A
    summary that merely disagrees with intact chunks is a fault of the derived index and
    goes to ``index_problems`` (fixed by `aim storage reindex`)."""
    problems = []
    try:
        data = store.open_run_file(run_hash)
    except Exception as exc:  # RepositoryError for a damaged file, sqlite3 errors, ...
        return [f'cannot be opened: {_reason(exc)}']
    try:
        try:
            data.get_props()
            params = data.get_params_text()
            if params is not None:
                json.loads(params)
        except Exception as exc:
            problems.append(f'properties or params unreadable: {_reason(exc)}')
        try:
            series = data.series_rows()
        except Exception as exc:
            return problems + [f'series list unreadable: {_reason(exc)}']
        for row in series if thorough else ():
            try:
                steps = data.read_series(row['id'])[0]
                seqs = [r[0] for r in data.query('SELECT seq FROM chunks WHERE series_id=? '
                                                 'ORDER BY seq', (row['id'],))]
            except Exception as exc:  # zlib.error or ValueError from a damaged chunk
                problems.append(f'series {row["name"]!r} {row["context"]}: data cannot be '
                                f'read ({_reason(exc)})')
                continue
            lost, wrong = _series_findings(row, steps, seqs)
            problems += lost
            if index_problems is not None:
                index_problems += [f'run {run_hash}: {w}' for w in wrong]
        if thorough:
            from aim.storage import objects
            try:
                problems += objects.check_run(store.db, run_hash, store.blobs.exists)
            except Exception as exc:
                problems.append(f'objects unreadable: {_reason(exc)}')
    finally:
        data.close()
    return problems


def _series_findings(row: dict, steps, seqs: list[int]) -> tuple[list[str], list[str]]:
    """(lost points, wrong summary) of one series: its decoded steps and chunk numbers
    against its summary row."""
    what = f'series {row["name"]!r} {row["context"]}'
    count, first, last = row['count'] or 0, row['first_step'], row['last_step']
    n = len(steps)
    held = f'steps {int(steps[0])}-{int(steps[-1])}' if n else 'no step'
    missing = sorted(set(range(max(seqs) + 1)) - set(seqs)) if seqs else []
    short = count > 0 and (n == 0 or (first is not None and int(steps[0]) > first)
                           or (last is not None and int(steps[-1]) < last))
    if missing or short or n < count and not seqs:
        gone = f'; chunk(s) {", ".join(map(str, missing[:5]))} missing' if missing else ''
        return [f'{what}: {max(count - n, 0)} of its {count} points are lost (its summary '
                f'counts {count} points, steps {first}-{last}; its chunks hold {n}, {held}'
                f'{gone}). Nothing but a backup holds them; the rest of the run reads, and '
                f'`aim storage reindex` makes the summary match what remains'], []
    if n != count or (n and (first != int(steps[0]) or last != int(steps[-1]))):
        return [], [f'the summary of {what} counts {count} points (steps {first}-{last}) '
                    f'but its chunks hold {n} ({held}); nothing is lost, `aim storage '
                    f'reindex` rebuilds the summary']
    return [], []


def _lost_chunks_from_list(store: RepoStore) -> list[tuple[str, str]]:
    """(run hash, problem) for series whose chunk list falls short of their summary: a
    gap in the chunk numbers, fewer points than counted, a step range that stops short.
    Reads the chunks' small columns only (no points are decoded), for `check --quick`."""
    try:
        rows = store.index.query(
            'SELECT s.run_hash, s.name, s.context, s.count, s.first_step, s.last_step, '
            'COUNT(c.seq), MAX(c.seq), COALESCE(SUM(c.n), 0), MIN(c.first_step), '
            'MAX(c.last_step) FROM series s LEFT JOIN chunks c ON c.series_id = s.id '
            'GROUP BY s.id HAVING s.count > 0')
    except Exception:
        return []   # an unreadable list is reported by the other checks
    found = []
    for run_hash, name, ctx, count, first, last, chunks, top, n, lo, hi in rows:
        gap = chunks and chunks != top + 1
        short = not chunks or n < count or (first is not None and lo > first) \
            or (last is not None and hi < last)
        if gap or short:
            missing = '; a chunk is missing' if gap else ''
            found.append((run_hash, f'series {name!r} {ctx}: its chunks hold {n} points '
                                    f'(steps {lo}-{hi}) of the {count} its summary counts '
                                    f'(steps {first}-{last}){missing}: '
                                    f'{max(count - n, 0) or "some"} points are lost. Nothing '
                                    f'but a backup holds them; the rest of the run reads, and '
                                    f'`aim storage reindex` makes the summary match what '
                                    f'remains'))
    return found


def _reason(exc: Exception) -> str:
    """The part of an error that says what is wrong, without paths or advice."""
    if isinstance(exc, RepositoryError) and exc.__cause__ is None and '(' in str(exc):
        # "<path> is damaged (<sqlite message>). Run ..." -> "<sqlite message>"
        return str(exc).split('(', 1)[1].split(')', 1)[0]
    return f'{type(exc).__name__}: {exc}'


def check_repository(root: str, *, thorough: bool = True,
                     progress: Progress | None = None) -> CheckReport:
    """Check the repository database, its write-ahead log and what else ``.aim`` holds,
    then every run on its own, then the data against the index and the lock files."""
    aim_dir = os.path.join(root, AIM_DIR)
    report = CheckReport([])
    db_path = os.path.join(aim_dir, DB_NAME)
    database_problems = check_database_file(db_path, thorough=thorough)
    report.shared_database_damaged = bool(database_problems)
    report.notes += _stray_files(aim_dir)
    try:
        store = RepoStore(root, readonly=True)
    except Exception as exc:
        report.repository_problems += [f'{DB_NAME}: {p}' for p in database_problems]
        if isinstance(exc, RepositoryDatabaseMissingError):
            # nothing for SQLite to salvage: the message says how to rebuild from journals
            report.repository_problems.append(f'the repository cannot be opened: {exc}')
        else:
            report.repository_problems.append(
                f'the repository cannot be opened: {_reason(exc)}; restore {DB_NAME} from a '
                f'backup if you have one, else salvage what SQLite can still read with '
                f'`sqlite3 {db_path} .recover | sqlite3 salvaged.db`')
        report.repository_problems += wal_problems(db_path)
        report.unreadable = True
        return report
    report.repository_problems += [
        f'{DB_NAME}: {p}; `aim storage reindex` rebuilds a damaged run index (then `aim '
        f'storage vacuum --full`); for damage in the run data, copy the runs that still '
        f'read into a new repository (`aim runs cp ... --destination NEW`), then use that one'
        for p in database_problems]
    report.repository_problems += wal_problems(db_path)
    try:
        try:
            hashes = store.list_run_hashes()
        except RepositoryError as exc:
            report.repository_problems.append(
                f'the list of runs cannot be read ({_reason(exc)}); copy the runs that '
                f'still read into a new repository (`aim runs cp ... --destination NEW`)')
            report.shared_database_damaged = True
            return report
        summaries: list[str] = []
        for run_hash in hashes:
            report.runs.append(RunCheck(run_hash, check_run_data(
                store, run_hash, thorough=thorough, index_problems=summaries)))
            if progress:
                progress(run_hash)
        if not thorough:
            for run_hash, problem in _lost_chunks_from_list(store):
                report.add_run_problem(run_hash, problem)
        report.repository_problems += _check_index(store, set(hashes))
        report.repository_problems += summaries
        # the run's data is intact: a REPO problem, fixed by reindexing, not a damaged run
        report.repository_problems += [
            f'run {run_hash}: the params in its index row are not valid JSON (queries that '
            f'read params skip the run); run `aim storage reindex`'
            for run_hash in _malformed_index_params(store)]
        report.repository_problems += _check_orphan_points(store, set(hashes), report)
        report.repository_problems += _check_lost_runs(store, set(hashes))
        from aim.storage.recovery import journal_problems
        report.repository_problems += [f'run {h}: {p}' if h else p
                                       for h, p in journal_problems(store)]
        if thorough:
            report.notes += _check_overviews(store)
    finally:
        store.close()
    return report


# Names under .aim that belong to the repository; anything else is someone else's file.
_REPOSITORY_ENTRIES = frozenset({DB_NAME, f'{DB_NAME}-wal', f'{DB_NAME}-shm', 'journal',
                                 'locks', 'quarantine'})


def _stray_files(aim_dir: str) -> list[str]:
    """Files in ``.aim`` that are not part of the repository: never read, never checked."""
    try:
        names = sorted(os.listdir(aim_dir))
    except OSError:
        return []
    stray = [n for n in names if n not in _REPOSITORY_ENTRIES and not n.endswith('.tmp')]
    if not stray:
        return []
    return [f'{os.path.join(aim_dir, n)} is not part of the repository (aimkit keeps its '
            f'data in {DB_NAME}, journal/ and locks/) and was not checked; move it out of '
            f'{aim_dir} if it is yours' for n in stray]


# SQLite's write-ahead log (https://www.sqlite.org/fileformat.html#the_write_ahead_log)
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_HEADER = 32
_WAL_FRAME_HEADER = 24


def _wal_checksum(data: bytes, big_endian: bool, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    import numpy as np
    words = np.frombuffer(data, dtype='>u4' if big_endian else '<u4').tolist()
    mask = 0xFFFFFFFF
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & mask
        s1 = (s1 + words[i + 1] + s0) & mask
    return s0, s1


def wal_problems(db_path: str) -> list[str]:
    """Damage in the database's write-ahead log, which SQLite would silently skip.

    SQLite replays the log's frames up to the first one whose salt or checksum does not
    match, and ignores the rest. Frames of an older generation of the log (a different
    salt) and a torn last frame are normal; frames of the *current* generation after a
    broken one are commits that were made and are now lost to every reader."""
    wal = f'{db_path}-wal'
    name = os.path.basename(wal)
    try:
        with open(wal, 'rb') as f:
            return _wal_findings(f, os.fstat(f.fileno()).st_size, name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [f'{name} cannot be read ({exc.strerror})']


def _wal_findings(f, size: int, name: str) -> list[str]:
    import struct
    if not size:
        return []
    advice = ('commits in it after that point are lost to every reader (the runs they '
              'wrote are listed below if their lock files remain); copy the runs that still '
              'read into a new repository (`aim runs cp ... --destination NEW`) if you '
              'need a clean one')
    header = f.read(_WAL_HEADER)
    if len(header) < _WAL_HEADER:
        return [f'{name} is shorter than its header ({size} bytes); {advice}']
    magic, _, page_size, _, salt1, salt2, c1, c2 = struct.unpack('>8I', header)
    big_endian = magic == 0x377F0683
    if magic not in _WAL_MAGIC or page_size < 512 or page_size & (page_size - 1) \
            or _wal_checksum(header[:24], big_endian) != (c1, c2):
        return [f'{name}: its header is damaged, so SQLite ignores all {size} bytes of it; '
                f'{advice}']
    frame = _WAL_FRAME_HEADER + page_size
    frames = (size - _WAL_HEADER) // frame
    checksum = (c1, c2)
    for i in range(frames):   # one frame in memory at a time: a log can be large
        data = f.read(frame)
        f_salts = struct.unpack_from('>2I', data, 8)
        if f_salts == (salt1, salt2):
            checksum = _wal_checksum(data[:8] + data[_WAL_FRAME_HEADER:], big_endian,
                                     *checksum)
            if checksum == struct.unpack_from('>2I', data, 16):
                continue
        # the log ends here for SQLite: is anything of this generation left behind?
        later = 0
        for j in range(i + 1, frames):
            f.seek(_WAL_HEADER + j * frame + 8)
            later += struct.unpack('>2I', f.read(8)) == (salt1, salt2)
        if later:
            return [f'{name} is damaged at frame {i + 1} of {frames}: SQLite stops reading '
                    f'it there, and {later} later frame(s) of it are skipped; {advice}']
        return []
    return []


def _malformed_index_params(store: RepoStore) -> list[str]:
    try:
        return [r[0] for r in store.index.query(
            'SELECT hash FROM runs WHERE NOT json_valid(params) ORDER BY hash')]
    except Exception:
        return []   # an unreadable index is reported by _check_index


def _check_orphan_points(store: RepoStore, run_hashes: set[str],
                         report: CheckReport | None = None) -> list[str]:
    """Series whose run has no record (props): their points are on disk, but no run
    lists them. Chunks whose series row is gone are problems of the run they belonged
    to (in ``report``) when it can be told."""
    try:
        found = [r[0] for r in store.index.query('SELECT DISTINCT run_hash FROM series')]
    except Exception as exc:
        return [f'the list of series cannot be read ({_reason(exc)})']
    orphans = sorted(set(found) - run_hashes)
    problems = []
    if orphans:
        problems.append(f'the points of {len(orphans)} run(s) have no run record '
                        f'({_some(orphans)}): no query lists them; `aim storage reindex` '
                        f'restores a record from the index where one remains')
    try:
        lost = lost_series(store.index)
    except Exception as exc:
        return problems + [f'the chunks cannot be listed ({_reason(exc)})']
    for sid, (points, owner, why) in sorted(lost.items()):
        whose = f'run {owner} ({why})' if owner else f'no run that can be told ({why})'
        fix = (f'`aim storage reindex` gives them back to that run as series '
               f'"{LOST_SERIES.format(sid)}" (the name and context of the series are lost)'
               if owner else 'they stay in the database, unread; do not copy the runs out '
                             'into a new repository if you may still need them')
        finding = (f'{points} points in the chunks of series #{sid} belong to no series '
                 f'row, so nothing reads them; they belonged to {whose}. {fix}')
        if owner and report is not None and owner in run_hashes:
            report.add_run_problem(owner, finding)
        else:
            problems.append(finding)
    return problems


LOST_SERIES = '__lost_series_{}'


def lost_series(db) -> dict[int, tuple[int, str | None, str]]:
    """Chunks whose series row is gone: ``{series id: (points, run hash or None, how the
    run was found)}``. Their run is the one whose other series have the neighbouring ids
    (series of a run are created together), or else the only run being written while the
    points were written."""
    from aim.storage import chunks as codec
    rows = db.query('SELECT series_id, SUM(n), MIN(seq), MAX(seq) FROM chunks WHERE '
                    'series_id NOT IN (SELECT id FROM series) GROUP BY series_id')
    out: dict[int, tuple[int, str | None, str]] = {}
    for sid, points, lo, hi in rows:
        before = db.query('SELECT run_hash FROM series WHERE id<? ORDER BY id DESC LIMIT 1',
                          (sid,))
        after = db.query('SELECT run_hash FROM series WHERE id>? ORDER BY id LIMIT 1', (sid,))
        times = []
        for seq in (lo, hi):
            (n, blob), = db.query('SELECT n, times FROM chunks WHERE series_id=? AND seq=?',
                                  (sid, seq))
            with contextlib.suppress(Exception):
                t = codec.decode_column('times', blob, n)
                times += [float(t.min()), float(t.max())]
        writing: set[str] = set()
        if times:   # chunk times are kept to the millisecond
            with contextlib.suppress(RepositoryError):   # a damaged index: ids alone
                writing = {h for h, in db.query(
                    'SELECT hash FROM runs WHERE creation_time <= ? '
                    'AND COALESCE(end_time, 1e300) >= ?', (min(times) + 0.002,
                                                           max(times) - 0.002))}
        neighbours = {r[0][0] for r in (before, after) if r}
        both = writing & neighbours
        candidates = both if both else (writing or neighbours)
        if len(candidates) == 1:
            if both:
                why = ('it was being written when these points were, and its other series '
                       'have the neighbouring ids')
            elif writing:
                why = 'the only run being written when these points were'
            else:
                why = 'its other series have the neighbouring ids'
            out[sid] = (int(points), candidates.pop(), why)
        else:
            out[sid] = (int(points), None, 'candidates: ' + (_some(sorted(candidates))
                                                             or 'none'))
    return out


def _check_lost_runs(store: RepoStore, run_hashes: set[str]) -> list[str]:
    """Runs that were written here (their lock file remains) but have no data."""
    try:
        names = os.listdir(store.locks_dir)
    except OSError:
        return []
    lost = sorted(n[:-5] for n in names if n.endswith('.lock') and n[:-5] not in run_hashes
                  and not locks.is_locked(os.path.join(store.locks_dir, n)))
    journals = set()
    with contextlib.suppress(OSError):
        journals = set(os.listdir(store.journal_dir))
    lost = [h for h in lost if h not in journals]   # the journal check reports those
    if not lost:
        return []
    return [f'{len(lost)} run(s) were written to this repository (their lock files remain) '
            f'but have no data in {DB_NAME} ({_some(lost, 10)}): they are lost, e.g. with the '
            f'commits of a damaged {DB_NAME}-wal, or their writer died as it created them. '
            f'`aim storage vacuum` forgets them']


def _some(hashes: list[str], n: int = 5) -> str:
    return ', '.join(hashes[:n]) + (', ...' if len(hashes) > n else '')


def _check_overviews(store: RepoStore) -> list[str]:
    """Series whose chunk overviews are missing or stale (see overview.py): nothing is
    lost, but charts and live updates of them read every point."""
    from aim.storage.chunks import CHUNK_POINTS
    try:
        (count,), = store.index.query(
            'SELECT COUNT(DISTINCT c.series_id) FROM chunks c LEFT JOIN overviews o '
            'ON o.series_id = c.series_id AND o.seq = c.seq '
            'WHERE o.series_id IS NULL OR o.n != c.n '
            'OR ((c.seq > 0 OR c.n >= ?) AND o.points IS NULL)', (CHUNK_POINTS,))
    except Exception as exc:
        return [f'chunk overviews cannot be read ({_reason(exc)}); `aim storage reindex` '
                f'rebuilds them']
    if not count:
        return []
    return [f'{count} series lack current chunk overviews (charts and live updates of them '
            f'read every point); run `aim storage reindex` to rebuild them']


def _check_index(store: RepoStore, run_hashes: set[str]) -> list[str]:
    try:
        indexed = set(store.index.run_hashes())
    except Exception as exc:
        return [f'the index cannot be read ({exc}); run `aim storage reindex` to rebuild it']
    problems = []
    missing = sorted(run_hashes - indexed)
    orphans = sorted(indexed - run_hashes)
    if missing:
        problems.append(f'{len(missing)} run(s) not in the index ({", ".join(missing[:5])}'
                        f'{", ..." if len(missing) > 5 else ""}); run `aim storage reindex`')
    if orphans:
        problems.append(f'{len(orphans)} indexed run(s) have no data '
                        f'({", ".join(orphans[:5])}{", ..." if len(orphans) > 5 else ""}); '
                        f'run `aim storage reindex`')
    return problems


def count_runs(root: str) -> int:
    """How many runs a check will visit (for progress bars), read-only."""
    path = os.path.join(root, AIM_DIR, DB_NAME)
    try:
        conn = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
        try:
            return conn.execute('SELECT COUNT(*) FROM runs').fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


# -- close -------------------------------------------------------------------------------
def close_dead_run(store: RepoStore, run_hash: str) -> bool:
    """Mark a run whose writer died as finished; ``False`` if it already was.

    Its unsaved journal is folded in and its end time becomes its last sign of life.
    A run that a live process is writing is refused with :class:`RunLockedError`.
    """
    if not store.run_exists(run_hash):
        raise MissingRunError(f'Cannot find run {run_hash!r} in the repository at '
                              f'{store.root}.', run_hash)
    if getattr(store, 'backend', 'sqlite') == 'postgresql':
        # no journal there, and a writer is live while its batches keep coming (its lease)
        if store.is_active(run_hash):
            raise RunLockedError(
                f'Run {run_hash} is being written by a live client (its batches arrived '
                f'within the last minute); it closes itself when that client ends.', run_hash)
        return _close_at_rest(store, run_hash)
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
        return _close_at_rest(store, run_hash)
    finally:
        locks.release(lock)


def _close_at_rest(store: RepoStore, run_hash: str) -> bool:
    """Give a run with no end time its last sign of life as end time."""
    data = store.open_run_file(run_hash)
    try:
        props = data.get_props()
        if props.get('end_time') is not None:
            return False
        last_sign = [t for t in (props.get('updated_at'), props.get('creation_time')) if t]
        _set_end_time(store, data, max(last_sign) if last_sign else time.time())
        return True
    finally:
        data.close()


def _set_end_time(store: RepoStore, data, end_time: float) -> None:
    with data.write() as conn:
        data.put_props(conn, {'end_time': end_time})
        store._index_run(conn, data)  # the index row shows it finished in the same commit


# -- vacuum ------------------------------------------------------------------------------
@dataclass
class VacuumReport:
    bytes_before: int
    bytes_after: int = 0
    compacted: list[str] = field(default_factory=list)   # database files, relative to .aim
    failed: dict[str, str] = field(default_factory=dict)
    removed_files: int = 0
    removed_blobs: int = 0      # blobs no object refers to any more

    @property
    def bytes_freed(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)


def vacuum_repository(store: RepoStore, progress: Progress | None = None,
                      full: bool = False) -> VacuumReport:
    """Fold dead writers' journals, compact every database file, remove leftovers.
    ``full`` rewrites each file (SQLite VACUUM), which stores every table in one piece: a
    chart's overview rows, written between the chunks they describe, then read in one
    sweep from a cold disk."""
    report = VacuumReport(bytes_before=directory_size(store.path))
    store.recover_dead_runs()  # folds dead writers' journals, drops orphan ones
    report.removed_blobs = collect_object_garbage(store)
    # SQLite makes live writers' flushes wait (busy timeout) while it compacts; their
    # track() calls never wait, they write to the journal.
    for name in sorted(os.listdir(store.path)):
        if name.endswith('.db'):
            _vacuum_file(os.path.join(store.path, name), name, report, full)
            if progress:
                progress(name)
    report.removed_files += _remove_leftovers(store)
    report.bytes_after = directory_size(store.path)
    return report


def collect_object_garbage(store) -> int:
    """Object rows of runs that no longer exist, and database blobs no object uses;
    returns how many blobs went. (Blobs in an object store are left: a writer puts them
    there before it commits the objects that use them.)"""
    with store.db.write() as conn:
        conn.execute('DELETE FROM object_chunks WHERE series_id NOT IN '
                     '(SELECT id FROM object_series)')
        conn.execute('DELETE FROM object_blobs WHERE series_id NOT IN '
                     '(SELECT id FROM object_series)')
        gone = [r[0] for r in conn.execute(
            'SELECT DISTINCT run_hash FROM object_series WHERE run_hash NOT IN '
            '(SELECT DISTINCT run_hash FROM run_props)').fetchall()]
        from aim.storage import objects
        objects.delete_runs(conn, gone)
        cur = conn.execute('DELETE FROM blobs WHERE digest NOT IN '
                           '(SELECT digest FROM object_blobs)')
        return max(cur.rowcount or 0, 0)


def _vacuum_file(path: str, name: str, report: VacuumReport, full: bool = False) -> None:
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=60)
        try:
            auto_vacuum = conn.execute('PRAGMA auto_vacuum').fetchone()[0]
            if auto_vacuum == 2 and not full:
                # INCREMENTAL: hand the free pages back without rewriting the file
                # executescript steps the pragma to completion; execute() frees one page
                conn.executescript('PRAGMA incremental_vacuum;')
            else:
                conn.execute('VACUUM')
            conn.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()
        finally:
            conn.close()
        report.compacted.append(name)
    except sqlite3.Error as exc:
        report.failed[name] = str(translate(exc, path))


def _remove_leftovers(store: RepoStore) -> int:
    """Lock files and journals of deleted runs, temporary files of interrupted copies."""
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
    for name in os.listdir(store.path):
        path = os.path.join(store.path, name)
        if name.endswith('.tmp') and now - _mtime(path) > STALE_TMP_AGE_S:
            removed += _unlink(path)
    for name in os.listdir(store.journal_dir) if os.path.isdir(store.journal_dir) else []:
        path = os.path.join(store.journal_dir, name)
        if name in existing or locks.is_locked(store.lock_path(name)) \
                or jr.writer_alive(path):
            continue
        if jr.list_segments(path):
            # points that recovery could not fold: the only copy of them; `aim storage
            # check` names the run, and the next open for writing tries again
            continue
        from aim.storage.recovery import journal_entry_problem
        if journal_entry_problem(store, name) is not None:
            continue  # not a run journal (a user's folder, a link, a copy): not ours to remove
        removed += _remove_empty_journal(path)
    return removed


def _remove_empty_journal(path: str) -> int:
    """Remove a journal folder that holds only a series file and unfinished segments; a
    folder with anything else in it is left as it is."""
    try:
        names = os.listdir(path)
    except OSError:
        return 0
    if any(n != jr.SERIES_FILE and not n.endswith(jr.TEMP_SUFFIX) for n in names):
        return 0
    for n in names:
        _unlink(os.path.join(path, n))
    try:
        os.rmdir(path)
    except OSError:
        return 0
    return 1


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


__all__ = ['CheckReport', 'RunCheck', 'VacuumReport', 'check_database_file', 'check_repository',
           'check_run_data', 'close_dead_run', 'count_runs', 'directory_size',
           'vacuum_repository']
