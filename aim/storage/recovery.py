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
    stray_files: list[str] = field(default_factory=list)
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
        if self.stray_files:
            out.append(f'files that are no part of a journal: '
                       f'{", ".join(os.path.basename(p) for p in self.stray_files)}')
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
    seg_names = [n for n in names if n.endswith(jr.SEGMENT_SUFFIX)]
    # numbered segments in order; other `.seg` files after them
    seg_names.sort(key=lambda n: (not n[:-4].isdigit(), int(n[:-4]) if n[:-4].isdigit() else 0,
                                  n))
    for name in names:
        path = os.path.join(jdir, name)
        if name.endswith(jr.TEMP_SUFFIX):
            img.temp_files.append(path)
        elif name != jr.SERIES_FILE and not name.endswith(jr.SEGMENT_SUFFIX):
            img.stray_files.append(path)
    for name in seg_names:
        img.segments.append(jr.read_segment_file(os.path.join(jdir, name)))
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
    if jr.writer_alive(jdir):
        return []   # its lock file was deleted, but its writer lives: not a dead journal
    img = read_journal(jdir)
    problems = img.problems()
    records = img.records()
    has_points = records is not None and len(records[0]) > 0
    for seg in img.segments:
        if not seg.damaged:
            # after a full disk: the preallocated tails go back before the database grows
            jr.release_unused_space(seg.path, seg.committed, seg.capacity)
    data = store.run_data(run_hash)
    created = False
    if not data.exists():
        if not has_points:
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
    last_sign = float(records[5].max()) if has_points and records is not None else None
    if created and records is not None:
        with store.db.write() as conn:
            data.put_props(conn, {'creation_time': float(records[5].min()), 'end_time': None,
                                  'updated_at': last_sign, 'tags': []})
            data.put_params_text(conn, '{}')
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
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    base = os.path.join(store.path, QUARANTINE_DIR, run_hash, stamp)
    qdir, k = base, 1
    while os.path.exists(qdir):
        k += 1
        qdir = f'{base}-{k}'
    os.makedirs(qdir)
    moved = []
    files = [s.path for s in img.segments if s.damaged] + img.stray_files
    if img.series_problems or img.unknown_ids:
        files.append(os.path.join(img.jdir, jr.SERIES_FILE))
    if img.unknown_ids:
        # the raw records of the unnamed series stay with the segments that hold them
        files += [s.path for s in img.segments if not s.damaged and s.records is not None]
    for path in dict.fromkeys(files):
        if os.path.exists(path):
            os.rename(path, os.path.join(qdir, os.path.basename(path)))
            moved.append(os.path.basename(path))
    report = {'run': run_hash, 'time': time.time(), 'problems': problems,
              'points_kept': kept, 'files': moved}
    with open(os.path.join(qdir, REPORT_FILE), 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=1)
    return qdir


def quarantine_files(aim_dir: str, name: str, paths: list[str], problems: list[str]) -> None:
    """Move those of ``paths`` that exist into ``quarantine/<name>/<UTC time>/``."""
    paths = [p for p in paths if os.path.exists(p)]
    if not paths:
        return
    qdir = os.path.join(aim_dir, QUARANTINE_DIR, name,
                        time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
    os.makedirs(qdir, exist_ok=True)
    for path in paths:
        os.rename(path, os.path.join(qdir, os.path.basename(path)))
    with open(os.path.join(qdir, REPORT_FILE), 'w', encoding='utf-8') as f:
        json.dump({'time': time.time(), 'problems': problems,
                   'files': [os.path.basename(p) for p in paths]}, f, indent=1)


def remove_journal_dir(jdir: str) -> None:
    """Segments first, ``series.jsonl`` last: a kill half way leaves a journal that still
    names its series (its points are committed already, so a replay changes nothing)."""
    try:
        names = os.listdir(jdir)
    except FileNotFoundError:
        return
    names.sort(key=lambda n: n == jr.SERIES_FILE)
    for i, name in enumerate(names):
        try:
            os.unlink(os.path.join(jdir, name))
        except IsADirectoryError:
            import shutil
            shutil.rmtree(os.path.join(jdir, name), ignore_errors=True)
        except FileNotFoundError:
            pass
        if i == 0:
            jr.fault_point('journal.dir_removal')
    try:
        os.rmdir(jdir)
    except OSError:
        pass


# -- check ------------------------------------------------------------------------------------
def journal_problems(store: RepoStore) -> list[tuple[str, str]]:
    """(run hash, message) for every journal of a dead writer that is not whole and every
    quarantined item. Read-only, and never raises: a problem reading is a finding."""
    from aim.storage import locks
    found: list[tuple[str, str]] = []
    try:
        entries = sorted(os.listdir(store.journal_dir))
    except FileNotFoundError:
        entries = []
    except OSError as e:
        return [('', f'the journal folder cannot be read ({e.strerror})')]
    for name in entries:
        path = os.path.join(store.journal_dir, name)
        try:
            if not os.path.isdir(path):
                found.append(('', f'journal/{name} is not a run journal; move it out of '
                                  f'{store.journal_dir}'))
                continue
            if locks.is_locked(store.lock_path(name)) or jr.writer_alive(path):
                continue  # a live writer's journal is in flux
            img = read_journal(path)
            problems = img.problems()
            records = img.records()
            if records is not None and len(records[0]) and not store.run_exists(name):
                problems.append('the run is missing from the database')
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
        runs = []
    for run_hash in runs:
        try:
            for stamp in sorted(os.listdir(os.path.join(qroot, run_hash))):
                qdir = os.path.join(qroot, run_hash, stamp)
                try:
                    with open(os.path.join(qdir, REPORT_FILE), encoding='utf-8') as f:
                        what = '; '.join(json.load(f).get('problems', []))
                except (OSError, ValueError, AttributeError, TypeError):
                    what = 'no report'
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
