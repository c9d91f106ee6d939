"""The append journal: memory-mapped segments that make ``track()`` crash-proof.

A point written into a segment lives in the kernel's page cache from the moment the
store instruction retires, so it survives the death of the process (SIGKILL, OOM kill,
segfault). The flusher folds journal records into the run file in batches; after a crash
the next opener replays whatever was not folded (``aim.storage.recovery``). See
docs/storage.md for the layout and the recovery rules.
"""
from __future__ import annotations

import errno
import fcntl
import json
import mmap
import os
import re
import signal
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from aim.storage.locks import held_by_another

MAGIC = b'AIMJRNL1'
HEADER_SIZE = 64
# header as int64 slots: [0]=magic, [1]=capacity, [2]=committed count, [3]=folded count
H_CAPACITY, H_COMMITTED, H_FOLDED = 1, 2, 3
NO_EPOCH = -(2 ** 63)
DEFAULT_CAPACITY = 1 << 16
FIRST_CAPACITY = 1 << 12
# (name, struct code, bytes per entry)
COLUMNS = (('code', 'i', 4), ('step', 'q', 8), ('value', 'q', 8), ('epoch', 'q', 8),
           ('time', 'd', 8))
SERIES_FILE = 'series.jsonl'
# the names a run hash may take (the rule `Run(run_hash=...)` applies): a journal folder
# under any other name is not a run's journal
RUN_HASH_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')
SEGMENT_SUFFIX = '.seg'
# a segment is built under this suffix and renamed into place once its header is written,
# so a `.seg` file always has one; a leftover temporary file never held a point
TEMP_SUFFIX = '.seg.tmp'
# wall-clock times a real record can carry (2001 .. 2286): tells records from zero fill or
# garbage when a damaged header no longer says how many records there are
_PLAUSIBLE_TIME = (1e9, 1e10)

# Test-only fault injection: AIM_TEST_FAULT_POINT=<name>[:<n>] SIGKILLs this process the
# n-th time (default first) it reaches the named point of the segment or fold lifecycle.
# Read once at import; the points sit on slow paths only, never in track().
_FAULT = os.environ.get('AIM_TEST_FAULT_POINT') or None
FAULT_POINT, _FAULT_AT = (_FAULT.partition(':')[0],
                          int(_FAULT.partition(':')[2] or 1)) if _FAULT else (None, 0)
_fault_hits = 0
if os.environ.get('AIM_TEST_JOURNAL_CAPACITY'):  # test-only: small segments, many roll-overs
    FIRST_CAPACITY = DEFAULT_CAPACITY = int(os.environ['AIM_TEST_JOURNAL_CAPACITY'])


def fault_point(name: str) -> None:
    global _fault_hits
    if name == FAULT_POINT:
        _fault_hits += 1
        if _fault_hits >= _FAULT_AT:
            os.kill(os.getpid(), signal.SIGKILL)


def _column_offsets(capacity: int) -> dict[str, int]:
    offsets, pos = {}, HEADER_SIZE
    for name, _, size in COLUMNS:
        offsets[name] = pos
        pos += size * capacity
        pos = (pos + 63) // 64 * 64
    offsets['_end'] = pos
    return offsets


def segment_size(capacity: int) -> int:
    return _column_offsets(capacity)['_end']


def segment_path(journal_dir: str, number: int) -> str:
    return os.path.join(journal_dir, f'{number:08d}{SEGMENT_SUFFIX}')


def list_segments(journal_dir: str) -> list[int]:
    try:
        names = os.listdir(journal_dir)
    except FileNotFoundError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith('.seg') and n[:-4].isdigit())


class Segment:
    """One memory-mapped journal file, opened for writing or for folding."""

    def __init__(self, path: str, capacity: int | None = None):
        self.path = path
        if capacity is not None:
            self._create(path, capacity)
        else:
            fd = os.open(path, os.O_RDWR)
            try:
                size = os.fstat(fd).st_size
                if size < HEADER_SIZE:
                    raise ValueError(f'{path} is not a journal segment ({size} bytes)')
                self._mm = mmap.mmap(fd, size)
            finally:
                os.close(fd)
            if self._mm[0:8] != MAGIC or segment_size(self._read_capacity()) > size:
                self._mm.close()
                raise ValueError(f'{path} is not a journal segment')
        self.capacity = self._read_capacity()
        self.offsets = _column_offsets(self.capacity)
        mv = memoryview(self._mm)
        self.header = mv[:HEADER_SIZE].cast('q')
        self.cols: dict[str, memoryview] = {}
        for name, code, size in COLUMNS:
            start = self.offsets[name]
            self.cols[name] = mv[start:start + size * self.capacity].cast(code)  # type: ignore[call-overload]
        self.dvalue = mv[self.offsets['value']:self.offsets['value'] + 8 * self.capacity].cast('d')
        self._mv = mv

    def _read_capacity(self) -> int:
        return int(struct.unpack_from('<q', self._mm, 8 * H_CAPACITY)[0])

    def _create(self, path: str, capacity: int) -> None:
        """Build the file under a temporary name, header included, then rename it into
        place: a kill at any moment leaves either no segment or a whole one."""
        tmp = path[:-len(SEGMENT_SUFFIX)] + TEMP_SUFFIX
        size = segment_size(capacity)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            # reserve the blocks now: a full disk fails here with ENOSPC, instead of
            # killing the process with SIGBUS on a later store into the mapping
            os.posix_fallocate(fd, 0, size)
            self._mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        os.close(fd)
        fault_point('segment.created_before_header')
        self._mm[0:8] = MAGIC
        struct.pack_into('<q', self._mm, 8 * H_CAPACITY, capacity)
        fault_point('segment.header_before_rename')
        try:
            os.rename(tmp, path)
        except BaseException:
            self._mm.close()
            _unlink_quietly(tmp)
            raise

    @property
    def committed(self) -> int:
        return self.header[H_COMMITTED]

    @property
    def folded(self) -> int:
        return self.header[H_FOLDED]

    def set_folded(self, n: int) -> None:
        self.header[H_FOLDED] = n

    def read(self, start: int, stop: int):
        """Copies of records [start, stop) as numpy arrays.

        Returns (code, step, ivalue, fvalue, epoch, time); fvalue is a view of ivalue.
        """
        import numpy as np
        mm, off = self._mm, self.offsets
        n = stop - start
        code = np.frombuffer(mm, np.int32, n, off['code'] + 4 * start).copy()
        step = np.frombuffer(mm, np.int64, n, off['step'] + 8 * start).copy()
        ivalue = np.frombuffer(mm, np.int64, n, off['value'] + 8 * start).copy()
        epoch = np.frombuffer(mm, np.int64, n, off['epoch'] + 8 * start).copy()
        time = np.frombuffer(mm, np.float64, n, off['time'] + 8 * start).copy()
        return code, step, ivalue, ivalue.view(np.float64), epoch, time

    def close(self) -> None:
        for col in self.cols.values():
            col.release()
        self.dvalue.release()
        self.header.release()
        self._mv.release()
        self._mm.close()


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- reading a dead writer's segment, damaged or not --------------------------------------
@dataclass
class SegmentImage:
    """What a segment file holds, read with every header field checked against the file.

    ``records`` are the (code, step, ivalue, fvalue, epoch, time) arrays of the records
    not folded yet (None when there are none); ``problems`` is empty for an intact
    segment; ``salvaged`` counts the records kept from a damaged one.
    """
    path: str
    records: tuple | None = None
    problems: list[str] = field(default_factory=list)
    salvaged: int = 0
    size: int = 0
    capacity: int = 0
    committed: int = 0   # records written (as read from the header, or inferred)

    @property
    def damaged(self) -> bool:
        return bool(self.problems)


def _standard_capacities() -> list[int]:
    caps, c = [], 1
    while c <= (1 << 20):
        caps.append(c)
        c *= 2
    return caps


def _plausible_run(times) -> int:
    """How many leading records carry a wall-clock time (zero fill ends them)."""
    import numpy as np
    ok = (times >= _PLAUSIBLE_TIME[0]) & (times <= _PLAUSIBLE_TIME[1])
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if len(bad) else len(times)


def read_segment_file(path: str) -> SegmentImage:
    """Read one segment file without trusting it; never raises for bad content."""
    import numpy as np
    img = SegmentImage(path)
    try:
        data, mtime = _read_nofollow(path)
    except OSError as e:
        img.problems.append(f'cannot be read ({e.strerror})')
        return img
    img.size = size = len(data)
    if size < HEADER_SIZE:
        img.problems.append(f'too short for a segment header ({size} bytes)')
        return img
    magic = data[:8]
    capacity, committed, folded = struct.unpack_from('<qqq', data, 8)
    cap_ok = 0 < capacity <= (1 << 40)
    if magic != MAGIC:
        img.problems.append('no segment header (magic bytes missing)')
    if not cap_ok or (magic != MAGIC and segment_size(capacity) > size):
        img.problems.append(f'capacity {capacity} is impossible for a file of {size} bytes')
        # a damaged capacity field: the file's size tells a standard layout apart, or (a
        # truncated file) the smallest layout that it is a prefix of
        fits = [c for c in _standard_capacities() if segment_size(c) == size] or \
            [c for c in _standard_capacities() if size < segment_size(c)]
        capacity = fits[0] if fits else 0
    elif segment_size(capacity) > size:
        exact = [c for c in _standard_capacities() if segment_size(c) == size]
        if exact and capacity > exact[0]:
            # the file is whole, its capacity field is not
            img.problems.append(f'capacity {capacity} needs {segment_size(capacity)} bytes, '
                                f'the file has {size}')
            capacity = exact[0]
    if not capacity:
        return img
    off = _column_offsets(capacity)
    # how many entries of each column lie inside the file
    avail = {name: max(0, min(capacity, (size - off[name]) // width))
             for name, _, width in COLUMNS}
    if segment_size(capacity) > size:
        img.problems.append(f'truncated to {size} of {segment_size(capacity)} bytes')
    times_all = np.frombuffer(data, np.float64, avail['time'], off['time']) \
        if avail['time'] else np.zeros(0)
    if magic == MAGIC and 0 <= committed <= capacity:
        n = committed
    else:
        if magic == MAGIC:
            img.problems.append(f'committed count {committed} outside 0..{capacity}')
        # records carry wall-clock times and the preallocated rest is zeros
        n = _plausible_run(times_all)
    n = min(n, avail['code'], avail['step'], avail['value'])
    start = folded if 0 <= folded <= n and not img.problems else 0
    if not (0 <= folded <= capacity) and magic == MAGIC:
        img.problems.append(f'folded count {folded} outside 0..{capacity}')
    img.capacity, img.committed = capacity, n
    if n <= start:
        return img
    k = n - start
    code = np.frombuffer(data, np.int32, k, off['code'] + 4 * start).copy()
    step = np.frombuffer(data, np.int64, k, off['step'] + 8 * start).copy()
    ivalue = np.frombuffer(data, np.int64, k, off['value'] + 8 * start).copy()

    def tail(name, dtype, default):
        have = max(0, min(n, avail[name]) - start)
        col = np.full(k, default, dtype)
        if have:
            col[:have] = np.frombuffer(data, dtype, have, off[name] + 8 * start)
        return col
    epoch = tail('epoch', np.int64, NO_EPOCH)
    time = tail('time', np.float64, mtime)
    bad_time = ~np.isfinite(time) | (time < _PLAUSIBLE_TIME[0]) | (time > _PLAUSIBLE_TIME[1])
    if img.problems and bad_time.any():
        time[bad_time] = mtime
    keep = code >= 0
    if not keep.all():
        img.problems.append(f'{int((~keep).sum())} records with a negative series code')
        code, step, ivalue, epoch, time = (code[keep], step[keep], ivalue[keep], epoch[keep],
                                           time[keep])
    img.records = (code, step, ivalue, ivalue.view(np.float64), epoch, time)
    if img.problems:
        img.salvaged = len(code)
    return img


def _read_nofollow(path: str) -> tuple[bytes, float]:
    """A regular file's bytes and modification time; a link is never followed (ELOOP)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, 'not a regular file')
        with os.fdopen(os.dup(fd), 'rb') as f:
            return f.read(), st.st_mtime
    finally:
        os.close(fd)


def release_unused_space(path: str, committed: int, capacity: int) -> None:
    """Give the preallocated blocks beyond the committed records back to the file system
    (hole punching, Linux), so a dead run's journal costs only its records: recovery on
    a disk that was full then needs no more than the space its user freed."""
    if committed >= capacity:
        return
    punch = _punch_hole()
    if punch is None:
        return
    off = _column_offsets(capacity)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        for name, _, width in COLUMNS:
            start = off[name] + width * committed
            start = (start + 4095) // 4096 * 4096
            stop = off[name] + width * capacity
            if stop > start:
                punch(fd, start, stop - start)
    finally:
        os.close(fd)


_punch = None


def _punch_hole():
    global _punch
    if _punch is None:
        _punch = False
        try:
            import ctypes
            import ctypes.util
            libc = ctypes.CDLL(ctypes.util.find_library('c') or None, use_errno=True)
            fallocate = libc.fallocate
            fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
            # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE: the file keeps its size, the range
            # reads as zeros and holds no blocks
            _punch = lambda fd, start, length: fallocate(fd, 3, start, length)  # noqa: E731
        except (OSError, AttributeError):
            pass
    return _punch or None


# -- series.jsonl -------------------------------------------------------------------------
def open_series_file(journal_dir: str) -> int:
    """The live writer's series file, locked (POSIX record lock) for as long as the writer
    lives: a second sign of life beside ``locks/<hash>.lock``, which a user may delete."""
    fd = os.open(os.path.join(journal_dir, SERIES_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass  # the run lock is what excludes writers; this one only tells recovery to wait
    return fd


def writer_alive(journal_dir: str) -> bool:
    """True if a live process holds the journal's series file (see open_series_file).
    Never call it for a journal this process writes: closing a descriptor of a file drops
    this process' locks on it."""
    try:
        fd = os.open(os.path.join(journal_dir, SERIES_FILE),
                     os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    return held_by_another(fd, fcntl.LOCK_EX)


def append_series_line(fd: int, series_id: int, name: str, context_json: str) -> None:
    """Announce a new series; one write() so a crash leaves whole lines only."""
    line = json.dumps({'id': series_id, 'name': name, 'context': context_json},
                      ensure_ascii=False) + '\n'
    os.write(fd, line.encode())
    fault_point('series.line_written')


def read_series_lines(journal_dir: str) -> Iterator[tuple[int, str, str]]:
    series, _ = read_series_file(journal_dir)
    for local_id, (name, ctx) in series.items():
        yield local_id, name, ctx


def read_series_file(journal_dir: str) -> tuple[dict[int, tuple[str, str]], list[str]]:
    """The series announced in a journal ({local id: (name, context json)}) and the
    problems met reading it (unreadable lines are skipped and named, never fatal)."""
    series: dict[int, tuple[str, str]] = {}
    problems: list[str] = []
    path = os.path.join(journal_dir, SERIES_FILE)
    try:
        raw, _ = _read_nofollow(path)
    except FileNotFoundError:
        return series, [f'{SERIES_FILE} is missing']
    except OSError as e:
        if e.errno == errno.ELOOP:
            return series, [f'{SERIES_FILE} is a symbolic link (not followed)']
        return series, [f'{SERIES_FILE} cannot be read ({e.strerror})']
    for lineno, line in enumerate(raw.split(b'\n'), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode('utf-8'))
            local_id, name, ctx = rec['id'], rec['name'], rec['context']
            if not (isinstance(local_id, int) and isinstance(name, str) and name
                    and isinstance(ctx, str)):
                raise ValueError('wrong field types')
            json.loads(ctx)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            problems.append(f'{SERIES_FILE} line {lineno} is unreadable')
            continue
        series[local_id] = (name, ctx)
    return series, problems


