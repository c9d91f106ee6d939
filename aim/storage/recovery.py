"""Crash recovery: replay a dead writer's journal into the database, whatever state it is in.

A journal is read without trusting it (``journal.read_segment_file``): every header field is
checked against the file's size, a damaged segment gives up the records it still holds, a
garbage line of ``series.jsonl`` is skipped. Every point that can be read is folded into the
database, in one transaction; points of a series the journal never named go to a series
called ``__unknown_series_<local id>``. Files that are not whole (damaged segments, a
damaged ``series.jsonl``, files that are no part of a journal) are moved, never deleted, to
``.aim/quarantine/<run hash>/<UTC time>/`` with a ``report.json`` saying what was wrong and
what was kept. One run's journal never stops the repository from opening: its problems
become a warning here and a finding of ``aim storage check`` (``journal_problems``).

The journal is removed only after the transaction holding its points has committed.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aim.storage import journal as jr
from aim.storage import objects

if TYPE_CHECKING:
    from aim.storage.repository import RepoStore

QUARANTINE_DIR = 'quarantine'
REPORT_FILE = 'report.json'
UNKNOWN_SERIES = '__unknown_series_{}'


@dataclass
class JournalImage:
    """Everything one run's journal directory holds, read and checked, nothing changed."""
    jdir: str
    series: dict[int, tuple[str, str]] = field(default_factory=dict)
    series_problems: list[str] = field(default_factory=list)
    segments: list[jr.SegmentImage] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    stray_files: list[str] = field(default_factory=list)   # links and folders included
    object_records: list = field(default_factory=list)     # rich objects' records
    object_problems: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)         # never followed
    unknown_ids: dict[int, int] = field(default_factory=dict)   # local id -> points

    def records(self):
        """All unfolded records, in journal order, as one tuple of arrays (or None)."""
        batches = [s.records for s in self.segments if s.records is not None]
        if not batches:
            return None
        if len(batches) == 1:
            return batches[0]
        import numpy as np
        code, step, ivalue, _, epoch, t = (np.concatenate(col) for col in zip(*batches))
        return code, step, ivalue, ivalue.view(np.float64), epoch, t

    def problems(self) -> list[str]:
        out = []
        for seg in self.segments:
            if seg.damaged:
                out.append(f'journal segment {os.path.basename(seg.path)} is damaged '
                           f'({"; ".join(seg.problems)}); {seg.salvaged} records were '
                           f'readable')
        has_points = any(s.records is not None for s in self.segments)
        for p in self.series_problems:
            if has_points or 'missing' not in p:
                out.append(p)
        if self.unknown_ids:
            names = ', '.join(f'{UNKNOWN_SERIES.format(i)} ({n} points)'
                              for i, n in sorted(self.unknown_ids.items())[:5])
            out.append(f'{sum(self.unknown_ids.values())} points belong to series the journal '
                       f'does not name; they are kept as {names}'
                       f'{", ..." if len(self.unknown_ids) > 5 else ""}')
        out += [f'object journal {p}; the records before it were kept'
                for p in self.object_problems]
        if self.links:
            out.append(f'symbolic links, not followed: '
                       f'{", ".join(os.path.basename(p) for p in self.links)}')
        stray = [p for p in self.stray_files if p not in self.links]
        if stray:
            out.append(f'files that are no part of a journal: '
                       f'{", ".join(os.path.basename(p) for p in stray)}')
        return out


def read_journal(jdir: str) -> JournalImage:
    """Read one run's journal directory without changing it."""
    import numpy as np
    img = JournalImage(jdir)
    img.series, img.series_problems = jr.read_series_file(jdir)
    try:
        names = sorted(os.listdir(jdir))
    except OSError:
        return img
    # a link is never read (what it names is not the journal's), only moved as it is
    img.links = [os.path.join(jdir, n) for n in names if os.path.islink(os.path.join(jdir, n))]
    linked = {os.path.basename(p) for p in img.links}
    seg_names = [n for n in names if n.endswith(jr.SEGMENT_SUFFIX) and n not in linked]
    # numbered segments in order; other `.seg` files after them
    seg_names.sort(key=lambda n: (not n[:-4].isdigit(), int(n[:-4]) if n[:-4].isdigit() else 0,
                                  n))
    for name in names:
        path = os.path.join(jdir, name)
        if name in linked:
            if name != jr.SERIES_FILE:   # a linked series file is a series problem
                img.stray_files.append(path)
        elif name.endswith(jr.TEMP_SUFFIX):
            img.temp_files.append(path)
        elif name != jr.SERIES_FILE and not name.endswith(jr.SEGMENT_SUFFIX) and \
                not objects.is_journal_name(name):
            img.stray_files.append(path)
    for name in seg_names:
        img.segments.append(jr.read_segment_file(os.path.join(jdir, name)))
    for path in objects.journal_files(jdir):
        if os.path.basename(path) in linked:
            continue
        recs, _, problem = objects.read_records(path)
        img.object_records += recs
        if problem:
            img.object_problems.append(problem)
    records = img.records()
    if records is not None and len(records[0]):
        ids, counts = np.unique(records[0] >> 1, return_counts=True)
        img.unknown_ids = {int(i): int(c) for i, c in zip(ids, counts)
                           if int(i) not in img.series}
    return img


def recover_journal(store: RepoStore, run_hash: str, jdir: str, mark_ended: bool) -> list[str]:
    """Fold a dead writer's journal into the database, quarantine what is not whole, then
    remove the journal. Returns the problems found (also given as one warning). The caller
    holds the run's lock."""
    from aim.storage.folder import SeriesFolder
    if os.path.islink(jdir):
        from aim.errors import RepositoryError
        raise RepositoryError(f'{jdir} is a symbolic link to {os.readlink(jdir)}, not the '
                              f'journal of run {run_hash}; it is never followed (recovery '
                              f'would delete files it names). Move it out of '
                              f'{os.path.dirname(jdir)}, then try again.', jdir)
    if jr.writer_alive(jdir):
        return []   # its lock file was deleted, but its writer lives: not a dead journal
    img = read_journal(jdir)
    problems = img.problems()
    records = img.records()
    has_points = records is not None and len(records[0]) > 0
    has_objects = bool(img.object_records)
    for seg in img.segments:
        if not seg.damaged:
            # after a full disk: the preallocated tails go back before the database grows
            jr.release_unused_space(seg.path, seg.committed, seg.capacity)
    data = store.run_data(run_hash)
    created = False
    if not data.exists():
        if not has_points and not has_objects:
            # the writer died before acknowledging a point: nothing to keep
            remove_journal_dir(jdir)
            return []
        created = True
        problems.append('the run was missing from the database; it was created again from '
                        'its journal (its params and earlier points are not in the journal)')
    folder = SeriesFolder(data)
    for local_id, (name, ctx) in img.series.items():
        folder.register(local_id, name, ctx)
    for local_id in img.unknown_ids:
        folder.register(local_id, UNKNOWN_SERIES.format(local_id), '{}')
    times = ([float(records[5].min()), float(records[5].max())] if has_points and
             records is not None else []) + [r.time for r in img.object_records]
    last_sign = max(times) if times else None
    if created:
        with store.db.write() as conn:
            data.put_props(conn, {'creation_time': min(times), 'end_time': None,
                                  'updated_at': last_sign, 'tags': []})
            data.put_params_text(conn, '{}')
    if has_objects:
        # objects first: their journal files go with the rest of the folder, at the end
        sink = objects.ObjectSink(store, run_hash)
        prepared = sink.prepare(img.object_records)
        with store.db.write() as conn:
            sink.fold(conn, prepared)
    # one transaction per segment, and each segment's file goes as soon as its points have
    # committed: on a disk that was full, the journal gives back more space than the
    # database takes (36 bytes a point against about a dozen, WAL included)
    for seg in img.segments:
        if seg.records is None or not len(seg.records[0]):
            continue
        with store.db.write() as conn:
            folder.fold(conn, *seg.records)
        if not seg.damaged and not img.unknown_ids:
            jr.fault_point('recovery.segment_committed')
            os.unlink(seg.path)
            with store.db.lock:
                store.db.conn.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()
    with store.db.write() as conn:
        props = data.get_props()
        if mark_ended and props.get('end_time') is None:
            candidates = [t for t in (last_sign, props.get('updated_at'),
                                      props.get('creation_time')) if t]
            data.put_props(conn, {'end_time': max(candidates) if candidates else time.time()})
        store._index_run(conn, data)
    jr.fault_point('recovery.committed_before_removal')
    if problems:
        where = quarantine(store, run_hash, img, problems, int(len(records[0])) if has_points
                           else 0)
        warnings.warn(f'aim: the journal of run {run_hash} was damaged: {"; ".join(problems)}. '
                      f'Every readable point was kept; the damaged files are in {where}. '
                      f'Run `aim storage check` for details.', RuntimeWarning, stacklevel=3)
    remove_journal_dir(jdir)
    return problems


def quarantine(store: RepoStore, run_hash: str, img: JournalImage, problems: list[str],
               kept: int) -> str:
    """Move the files of a journal that are not whole into the run's quarantine folder."""
    ensure_quarantine_root(store.path)
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    base = os.path.join(store.path, QUARANTINE_DIR, run_hash, stamp)
    qdir, k = base, 1
    while os.path.exists(qdir):
        k += 1
        qdir = f'{base}-{k}'
    os.makedirs(qdir)
    moved = []
    files = [s.path for s in img.segments if s.damaged] + img.stray_files
    if img.object_problems:
        files += objects.journal_files(img.jdir)
    if img.series_problems or img.unknown_ids:
        files.append(os.path.join(img.jdir, jr.SERIES_FILE))
    if img.unknown_ids:
        # the raw records of the unnamed series stay with the segments that hold them
        files += [s.path for s in img.segments if not s.damaged and s.records is not None]
    for path in dict.fromkeys(files):
        if os.path.lexists(path):
            os.rename(path, os.path.join(qdir, os.path.basename(path)))
            moved.append(os.path.basename(path))
    report = {'run': run_hash, 'time': time.time(), 'problems': problems,
              'points_kept': kept, 'files': moved}
    with open(os.path.join(qdir, REPORT_FILE), 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=1)
    return qdir


def quarantine_files(aim_dir: str, name: str, paths: list[str], problems: list[str]) -> str:
    """Move those of ``paths`` that exist (a link itself, never what it names) into
    ``quarantine/<name>/<UTC time>/``; returns that folder ('' if nothing moved)."""
    paths = [p for p in paths if os.path.lexists(p)]
    if not paths:
        return ''
    ensure_quarantine_root(aim_dir)
    qdir = os.path.join(aim_dir, QUARANTINE_DIR, name,
                        time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
    os.makedirs(qdir, exist_ok=True)
    for path in paths:
        try:
            os.rename(path, os.path.join(qdir, os.path.basename(path)))
        except FileNotFoundError:
            pass   # another process moved it first
    with open(os.path.join(qdir, REPORT_FILE), 'w', encoding='utf-8') as f:
        json.dump({'time': time.time(), 'problems': problems,
                   'files': [os.path.basename(p) for p in paths]}, f, indent=1)
    return qdir


# -- the repository's own folders ---------------------------------------------------------------
REPOSITORY_FOLDERS = ('journal', 'locks', QUARANTINE_DIR)
SET_ASIDE = '_repository'   # quarantine/<this>/: folders of the repository that were not


def folder_problem(path: str) -> str | None:
    """Why one of the repository's own folders is not a folder, or None (a folder, a link
    to one, or nothing yet)."""
    if os.path.isdir(path) or not os.path.lexists(path):
        return None
    if os.path.islink(path):
        return f'is a symbolic link to {os.readlink(path)}, which is not a folder'
    return 'is a file, not a folder'


def ensure_quarantine_root(aim_dir: str) -> None:
    """``.aim/quarantine`` as a folder: something else in its place is first moved, as it
    is, into the new folder's ``_repository/<UTC time>/``."""
    root = os.path.join(aim_dir, QUARANTINE_DIR)
    problem = folder_problem(root)
    if problem is None:
        return
    aside = f'{root}.{os.getpid()}.aside'
    try:
        os.rename(root, aside)
    except FileNotFoundError:
        if os.path.isdir(root):
            return   # another process set it aside first
        raise
    qdir = os.path.join(root, SET_ASIDE, time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
    os.makedirs(qdir, exist_ok=True)
    os.rename(aside, os.path.join(qdir, QUARANTINE_DIR))
    with open(os.path.join(qdir, REPORT_FILE), 'w', encoding='utf-8') as f:
        json.dump({'time': time.time(), 'problems': [f'{QUARANTINE_DIR} {problem}'],
                   'files': [QUARANTINE_DIR]}, f, indent=1)


def repair_folders(aim_dir: str) -> None:
    """Give the repository back its own folders (``journal``, ``locks``, ``quarantine``):
    one that is a file or a link to no folder is moved, as it is, to
    ``quarantine/_repository/<UTC time>/`` and made again. Called on opening for writing."""
    ensure_quarantine_root(aim_dir)
    for name in REPOSITORY_FOLDERS:
        path = os.path.join(aim_dir, name)
        problem = folder_problem(path)
        if problem is not None:
            quarantine_files(aim_dir, SET_ASIDE, [path], [f'{name} {problem}; it was moved '
                                                          f'here and {name}/ made again'])


def remove_journal_dir(jdir: str) -> None:
    """Segments first, ``series.jsonl`` last: a kill half way leaves a journal that still
    names its series (its points are committed already, so a replay changes nothing)."""
    try:
        names = os.listdir(jdir)
    except FileNotFoundError:
        return
    # only the journal's own files: anything else someone put there stays (and so does
    # the folder, which rmdir then leaves)
    names = [n for n in names if n == jr.SERIES_FILE or n.endswith(jr.SEGMENT_SUFFIX)
             or n.endswith(jr.TEMP_SUFFIX) or objects.is_journal_name(n)]
    names.sort(key=lambda n: n == jr.SERIES_FILE)
    for i, name in enumerate(names):
        try:
            os.unlink(os.path.join(jdir, name))
        except IsADirectoryError:
            pass  # a folder named like a segment: not written by aimkit, left alone
        except FileNotFoundError:
            pass
        if i == 0:
            jr.fault_point('journal.dir_removal')
    try:
        os.rmdir(jdir)
    except OSError:
        pass


# -- which folders under journal/ are run journals -----------------------------------------------
def journal_entry_problem(store: RepoStore, name: str) -> str | None:
    """Why ``journal/<name>`` is not a run journal (recovery leaves it alone), or None.

    A run journal is a real folder (a link is never followed) named by a run hash. A
    folder named ``<hash><.suffix>`` whose run the database does not hold while run (or
    journal) ``<hash>`` exists is a copy someone made (``<hash>.bak``): replaying it would
    make a phantom run holding the same points again."""
    path = os.path.join(store.journal_dir, name)
    where = f'journal/{name!r}'
    move = f'it was left as it is; move it out of {store.journal_dir}'
    if not jr.RUN_HASH_RE.match(name):
        return f'{where} is not a run journal (its name is not a run hash); {move}'
    if os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = '?'
        return (f'{where} is a symbolic link to {target}, not a run journal; it is never '
                f'followed (recovery would change what it names); {move}')
    if not os.path.isdir(path):
        return f'{where} is a file, not a run journal; {move}'
    if '.' in name and not store.run_exists(name):
        for i, ch in enumerate(name):
            prefix = name[:i]
            if ch == '.' and prefix and (store.run_exists(prefix) or os.path.isdir(
                    os.path.join(store.journal_dir, prefix))):
                return (f'{where} is not a run journal: run {name} is not in the database and '
                        f'the folder looks like a copy of the journal of run {prefix}; '
                        f'replaying it would add a second run with the same points; {move}')
    return None


def unrecovered_journals(store: RepoStore) -> list[tuple[str, int]]:
    """(run hash, points) of every dead writer's journal that still holds points. Read-only."""
    from aim.storage import locks
    out: list[tuple[str, int]] = []
    try:
        names = sorted(os.listdir(store.journal_dir))
    except OSError:
        return out
    for name in names:
        path = os.path.join(store.journal_dir, name)
        try:
            if journal_entry_problem(store, name) is not None or \
                    locks.is_locked(store.lock_path(name)) or jr.writer_alive(path):
                continue
            records = read_journal(path).records()
        except Exception:   # a warning's helper never stops an open
            continue
        if records is not None and len(records[0]):
            out.append((name, int(len(records[0]))))
    return out


# -- check ------------------------------------------------------------------------------------
def journal_problems(store: RepoStore) -> list[tuple[str, str]]:
    """(run hash, message) for every journal of a dead writer that is not whole or cannot be
    recovered, every folder under journal/ that is not a run journal, every lock path that
    is not a lock file, and every quarantined item. Read-only, and never raises: a problem
    reading is a finding."""
    from aim.storage import locks
    found: list[tuple[str, str]] = []
    for sub in REPOSITORY_FOLDERS:
        problem = folder_problem(os.path.join(store.path, sub))
        if problem is not None:
            found.append(('', f'{os.path.join(store.path, sub)} {problem}; opening the '
                              f'repository for writing moves it to '
                              f'{os.path.join(store.path, QUARANTINE_DIR, SET_ASIDE)} and '
                              f'makes the folder again'))
    # without write access, nothing folds a dead writer's journal: its points stay unseen
    writable = os.access(store.path, os.W_OK) and all(
        os.access(d, os.W_OK) or not os.path.lexists(d)   # a missing one is made again
        for d in (store.journal_dir, store.locks_dir))
    try:
        lock_names = sorted(os.listdir(store.locks_dir))
    except OSError:
        lock_names = []
    for lname in lock_names:
        problem = locks.path_problem(os.path.join(store.locks_dir, lname))
        if problem is None:
            continue
        run_hash = lname[:-5] if lname.endswith('.lock') else ''
        if run_hash and os.path.isdir(store.run_journal_dir(run_hash)) and \
                journal_entry_problem(store, run_hash) is None:
            found.append((run_hash, f'its lock file locks/{lname} {problem}: no process can '
                                    f'lock it, so the journal of its dead writer is not '
                                    f'recovered and its points are not shown; opening the '
                                    f'repository for writing moves it to '
                                    f'{os.path.join(store.path, QUARANTINE_DIR, run_hash)}, '
                                    f'makes a lock file again and recovers the run'))
        else:
            found.append(('', f'locks/{lname!r} {problem}; move it out of {store.locks_dir}'))
    try:
        entries = sorted(os.listdir(store.journal_dir))
    except FileNotFoundError:
        entries = []
    except OSError as e:
        return found + [('', f'the journal folder cannot be read ({e.strerror})')]
    for name in entries:
        path = os.path.join(store.journal_dir, name)
        try:
            not_journal = journal_entry_problem(store, name)
            if not_journal is not None:
                found.append(('', not_journal))
                continue
            if locks.is_locked(store.lock_path(name)) or jr.writer_alive(path):
                continue  # a live writer's journal is in flux
            img = read_journal(path)
            problems = img.problems()
            records = img.records()
            if records is not None and len(records[0]) and not store.run_exists(name):
                problems.append('the run is missing from the database')
            if not writable and not problems and records is not None and len(records[0]):
                found.append((name, f'{len(records[0])} points are only in the journal of its '
                                    f'writer, which died, and are not shown: this user cannot '
                                    f'write to the repository, so nothing folds them into the '
                                    f'database. Opening the repository once with write access '
                                    f'(e.g. `aim runs ls --repo {store.root}` as its owner) '
                                    f'recovers them'))
                continue
            for p in problems:
                found.append((name, f'{p}; opening the repository for writing keeps every '
                                    f'readable point and moves the damaged files to '
                                    f'{os.path.join(store.path, QUARANTINE_DIR, name)}'))
        except Exception as e:  # a check reports, it never stops
            found.append((name, f'its journal cannot be read ({type(e).__name__}: {e})'))
    qroot = os.path.join(store.path, QUARANTINE_DIR)
    try:
        runs = sorted(os.listdir(qroot))
    except OSError:
        runs = []   # missing, or not a folder (named above)
    for run_hash in runs:
        try:
            for stamp in sorted(os.listdir(os.path.join(qroot, run_hash))):
                qdir = os.path.join(qroot, run_hash, stamp)
                try:
                    with open(os.path.join(qdir, REPORT_FILE), encoding='utf-8') as f:
                        what = '; '.join(json.load(f).get('problems', []))
                except (OSError, ValueError, AttributeError, TypeError):
                    what = 'no report'
                if run_hash == SET_ASIDE:
                    found.append(('', f'things that stood in place of the repository\'s own '
                                      f'files or folders, set aside in {qdir} ({what}); look at '
                                      f'them, then delete the folder'))
                    continue
                if run_hash == '_database':
                    found.append(('', f'files of a lost database in {qdir} ({what}); delete '
                                      f'the folder once you no longer need them'))
                    continue
                found.append((run_hash, f'quarantined journal files in {qdir} ({what}); '
                                        f'every readable point is in the run. Look at them, '
                                        f'then delete the folder'))
        except Exception as e:
            found.append((run_hash, f'its quarantine folder cannot be read ({e})'))
    return found


def warn_recovery_failed(run_hash: str, exc: BaseException) -> None:
    warnings.warn(f'aim: could not recover the journal of run {run_hash} ({exc}); it was left '
                  f'as it is and will be retried on the next open. Run `aim storage check` '
                  f'for details.', RuntimeWarning, stacklevel=3)
