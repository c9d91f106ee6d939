"""The live writer of one run: the ``track()`` fast path and the background flusher.

``track()`` validates its arguments, then stores the point into the memory-mapped journal
under a short thread lock: no system call, no allocation beyond Python's own, never a
wait on disk. The flusher folds the journal into the run file every ``flush_interval_s``.
"""
from __future__ import annotations

import os
import sys
import threading
import time as _time_mod
import warnings
from collections.abc import Callable
from struct import error as struct_error
from typing import Any

from aim.errors import RepositoryWriteError, RunError, TrackInputError
from aim.storage import journal as jr
from aim.storage.encoding import (
    MAX_NAME_CHARS,
    canonical_context,
    check_context,
    check_text,
    numpy_scalar,
)
from aim.storage.objects import pack_record as _pack_record

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
NO_EPOCH = jr.NO_EPOCH
FLUSH_INTERVAL_S = 0.5
FOLD_SWITCH_INTERVAL_S = 0.001


def coerce_value(value: Any) -> tuple[Any, int]:
    """A trackable number as (python value, is_int), or raise TrackInputError."""
    if isinstance(value, bool):
        return int(value), 1
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return int(value), 1
        # stored as a float it would silently lose digits: say so instead
        raise TrackInputError(f'track() value {value} is outside the int64 range that '
                              f'integer series hold (-2**63 to 2**63-1); pass float(value) to '
                              f'store it rounded, or track it in smaller units.')
    if isinstance(value, float):
        return float(value), 0
    scalar = numpy_scalar(value)
    if scalar is not None:
        return coerce_value(scalar)
    shape = getattr(value, 'shape', None)
    if shape is not None and tuple(shape) in ((), (1,)):
        # one element, but not a real number (complex, datetime64, longdouble, object)
        dtype = getattr(value, 'dtype', type(value).__name__)
        raise TrackInputError(f'track() value must be a real number (int, float, bool); got '
                              f'a {type(value).__module__.split(".")[0]} scalar of type '
                              f'{dtype}. Convert it first, e.g. float(value) or '
                              f'value.real.')
    if shape is not None:
        raise TrackInputError(f'track() takes a single number; got an array of shape '
                              f'{tuple(shape)}. Track its elements separately or reduce it '
                              f'(e.g. .mean()) first.')
    if isinstance(value, dict):
        raise TrackInputError("'name' should be None when tracking values dictionary. "
                              "track({'loss': 0.1, 'acc': 0.9}, step=...) tracks each key.")
    raise TrackInputError(f'Input type {type(value)} is neither python number nor AimObject: '
                          f'track() value must be a number (int, float, bool, or a '
                          f'numpy/torch scalar), got {value!r:.60}')


def _coerce_int(x: Any, what: str) -> int:
    """``step``/``epoch`` as a Python int, or raise TrackInputError naming it."""
    if isinstance(x, bool):
        raise TrackInputError(f'track() {what} must be an integer, got bool {x!r}')
    if isinstance(x, int):
        v = int(x)
    else:
        scalar = numpy_scalar(x)
        if isinstance(scalar, int) and not isinstance(scalar, bool):
            v = scalar
        else:
            raise TrackInputError(f'track() {what} must be an integer, got '
                                  f'{type(x).__name__}: {x!r:.40}')
    if not (_INT64_MIN < v <= _INT64_MAX):
        # -2**63 itself is the journal's "no epoch" mark, so it is no step or epoch either
        raise TrackInputError(f'track() {what} {v} is out of range: a {what} is an int64 from '
                              f'-2**63+1 to 2**63-1.')
    return v


class RunWriter:
    def __init__(self, run_hash: str, journal_dir: str, folder, flush_callback: Callable,
                 flush_interval_s: float = FLUSH_INTERVAL_S,
                 capacity: int = jr.FIRST_CAPACITY, max_capacity: int = jr.DEFAULT_CAPACITY,
                 objects=None):
        self.run_hash = run_hash
        self.journal_dir = journal_dir
        self.folder = folder
        self._flush_callback = flush_callback   # (fold function) -> None
        self.flush_interval_s = flush_interval_s
        self._capacity = capacity
        self._max_capacity = max_capacity
        os.makedirs(journal_dir, exist_ok=True)
        remove_journal_files(journal_dir)  # a previous session's journal was folded already
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._series: dict = {}   # (name, context items) -> ([code_base, last_step], types)
        self._by_canon: dict = {}        # (name, canonical context) -> same list
        # series that exist already (a resumed run) get local ids now, announced in the
        # journal so that a crash recovery maps them as this session did
        self._series_fd = jr.open_series_file(journal_dir)
        for local_id, (key, s) in enumerate(list(folder.by_key.items())):
            folder.register(local_id, *key)
            jr.append_series_line(self._series_fd, local_id, *key)
            self._by_canon[key] = [local_id * 2, s.last_step if s.last_step is not None else -1]
        self._next_sid = len(folder.by_key)
        # rich objects (aim/storage/objects.py): their own journal files; `objects` is the
        # sink that encodes and folds them ((name, canonical context) -> [key, last step,
        # kind] for the object series that exist already)
        from aim.storage.objects import ObjectJournal, series_key
        self._objects = ObjectJournal(journal_dir)
        self._object_sink = objects
        self._clock = _now     # read once, as track() does (importers set their own clock)
        self._obj_by_canon: dict = {}
        self._obj_series: dict = {}
        for (name, canon), (kind, last) in (objects.existing() if objects else {}).items():
            self._obj_by_canon[(name, canon)] = [series_key(kind, name, canon),
                                                 -1 if last is None else last, kind]
        self._segments: list[jr.Segment] = []
        self._seg_no = max(jr.list_segments(journal_dir), default=-1) + 1
        self._open_segment()
        self.track = self._make_track()
        self._warned = False
        self._retired = False   # close() began: no point and no series is accepted
        self.closed = False
        self._service().add(self)

    def _service(self) -> FlushService:
        """The thread that flushes this writer (a remote run's spool has its own)."""
        return FlushService.get()

    # the hot path --------------------------------------------------------------------
    def _make_track(self):
        """Build ``track()`` as a closure: its state lives in cells, which Python reads
        faster than instance attributes, and this is the hottest code in the product."""
        series, series_slow, now = self._series, self._series_slow, _now
        track_objects = self._track_objects
        # bound acquire/release cost about half of a `with lock:` block on this hot path
        acquire, release = self._lock.acquire, self._lock.release
        open_segment, run_hash = self._open_segment, self.run_hash
        seg = self._segments[-1]
        cols = seg.cols
        c_code, c_step, c_ival, c_epoch, c_time = (cols['code'], cols['step'], cols['value'],
                                                   cols['epoch'], cols['time'])
        c_fval, header, cap, n = seg.dvalue, seg.header, seg.capacity, 0

        def track(value, name=None, step=None, epoch=None, context=None):
            nonlocal c_code, c_step, c_ival, c_fval, c_epoch, c_time, header, cap, n
            tv = type(value)
            if tv is float:
                is_int = 0
            elif tv is int and -9223372036854775808 <= value <= 9223372036854775807:
                is_int = 1
            elif tv is dict and name is None:
                for key, val in value.items():
                    track(val, key, step, epoch, context)
                return
            elif tv is list or tv is tuple or hasattr(tv, '_capture'):
                return track_objects(value, name, step, epoch, context)
            else:
                value, is_int = coerce_value(value)
            try:
                entry, types = series[(name, tuple(context.items()) if context is not None
                                       else ())]
                # 1 == 1.0 == True as dict keys, but they are different contexts
                if types is not None and types != tuple(map(type, context.values())):
                    entry = series_slow(name, context)
            except (KeyError, TypeError, AttributeError):
                entry = series_slow(name, context)
            if epoch is None:
                epoch = -9223372036854775808  # NO_EPOCH as a literal: no lookup per point
            elif type(epoch) is not int or epoch == -9223372036854775808:
                epoch = _coerce_int(epoch, 'epoch')  # refuses NO_EPOCH itself
            # acquire() inside the try: an exception raised by a signal handler as the
            # call returns (KeyboardInterrupt, a script's sys.exit) still releases the lock
            try:
                acquire()
                if step is None:
                    step = entry[1] + 1
                elif type(step) is not int:
                    step = _coerce_int(step, 'step')
                i = n
                if i >= cap:
                    if not cap:  # close() retired this writer: its segments are unmapped
                        raise RunError(f'Run {run_hash} is closed; open Run(run_hash='
                                       f'{run_hash!r}) to continue tracking into it.', run_hash)
                    seg = open_segment()
                    cols = seg.cols
                    c_code, c_step, c_ival, c_epoch, c_time = (
                        cols['code'], cols['step'], cols['value'], cols['epoch'], cols['time'])
                    c_fval, header, cap, i = seg.dvalue, seg.header, seg.capacity, 0
                try:
                    c_step[i] = step
                    c_epoch[i] = epoch
                except (ValueError, OverflowError):
                    _coerce_int(step, 'step')
                    _coerce_int(epoch, 'epoch')
                    raise
                if is_int:
                    c_ival[i] = value
                else:
                    c_fval[i] = value
                c_time[i] = now()
                c_code[i] = entry[0] | is_int
                # steps only move forward on the common path: the check for the one int64
                # value that is not a step costs nothing there
                if step > entry[1]:
                    entry[1] = step
                elif step == -9223372036854775808:
                    _coerce_int(step, 'step')
                n = i + 1
                header[2] = n  # jr.H_COMMITTED: the point is acknowledged from here on
            finally:
                try:
                    release()
                except RuntimeError:  # acquire() itself was interrupted: nothing to release
                    pass

        def retire() -> None:
            """Refuse every later point (called under the lock by close())."""
            nonlocal cap
            cap = 0

        self._retire_track = retire
        return track

    # rich objects --------------------------------------------------------------------
    def _track_objects(self, value, name, step, epoch, context) -> None:
        """``track()`` of an object (Image, Text, ...) or a list of objects of one kind:
        their raw data, copied, goes into the object journal; encoding happens in the
        flusher."""
        tv = type(value)
        is_list = tv is list or tv is tuple
        objs: Any
        if is_list:
            objs = list(value)
            if not objs:
                raise TrackInputError(f'track() got an empty {tv.__name__}: give one or '
                                      f'more objects (Image, Text, Distribution, Audio, '
                                      f'Figure) or a number.')
            kind = getattr(type(objs[0]), 'KIND', None)
            for obj in objs:
                to = type(obj)
                if not hasattr(to, '_capture') or to.KIND != kind:
                    if kind is None or not hasattr(to, '_capture'):
                        raise TrackInputError(
                            f'track() takes a number, an object (Image, Text, Distribution, '
                            f'Audio, Figure) or a list of objects of one type; got a '
                            f'{tv.__name__} holding {to.__name__}: {obj!r:.60}')
                    raise TrackInputError(f'track() got a list mixing {kind} and '
                                          f'{to.KIND} objects; a series holds one type.')
        else:
            objs = (value,)
            kind = tv.KIND
        try:
            entry = self._obj_series[(name, tuple(context.items()) if context is not None
                                      else ())]
        except (KeyError, TypeError, AttributeError):
            entry = self._object_series_slow(name, context, kind)
        if entry[2] != kind:
            raise TrackInputError(f'{name!r} {context or {}} holds {entry[2]} objects; it '
                                  f'cannot take {kind} objects. Use another name.')
        if epoch is None:
            epoch = NO_EPOCH
        elif type(epoch) is not int or epoch == NO_EPOCH:
            epoch = _coerce_int(epoch, 'epoch')
        if step is not None and type(step) is not int:
            step = _coerce_int(step, 'step')
        items = []
        for obj in objs:
            meta, payload = obj._capture()
            items.append((_json_bytes(meta) if meta else b'{}', payload))
        with self._lock:
            if self._retired:
                raise RunError(f'Run {self.run_hash} is closed; open Run(run_hash='
                               f'{self.run_hash!r}) to continue tracking into it.',
                               self.run_hash)
            if step is None:
                step = entry[1] + 1
            try:
                self._objects.append(*_pack_record(entry[0], step, epoch, self._clock(), items,
                                                   is_list))
            except OSError as e:
                raise RepositoryWriteError(
                    f'Cannot write the object journal of run {self.run_hash} in '
                    f'{self.journal_dir}: {e.strerror or e}. Free disk space or fix the '
                    f'repository permissions; what was tracked before is safe.',
                    self.journal_dir) from None
            except (OverflowError, struct_error):
                _coerce_int(step, 'step')
                raise
            if step > entry[1]:
                entry[1] = step

    def _object_series_slow(self, name, context, kind) -> list:
        from aim.storage.objects import series_key
        self._check_name(name)
        try:
            ctx = check_context(context)
        except (TypeError, ValueError) as e:
            raise TrackInputError(str(e)) from None
        canon = canonical_context(ctx)
        with self._lock:
            if (name, canon) in self._by_canon:
                raise TrackInputError(f'{name!r} {ctx} is a metric in run {self.run_hash}; '
                                      f'it cannot take {kind} objects. Use another name.')
            entry = self._obj_by_canon.get((name, canon))
            if entry is None:
                entry = [series_key(kind, name, canon), -1, kind]
                self._obj_by_canon[(name, canon)] = entry
            try:
                self._obj_series[(name, tuple(context.items()) if context is not None
                                  else ())] = entry
            except TypeError:
                pass
        return entry

    # slow paths ----------------------------------------------------------------------
    @staticmethod
    def _check_name(name) -> None:
        if name is None:
            raise TrackInputError("'name' should not be None. track() name must be a str "
                                  "(only a dict value may go without one).")
        if not isinstance(name, str):
            raise TrackInputError(f'track() name must be a str, got {type(name).__name__}: '
                                  f'{name!r:.40}')
        if not name:
            raise TrackInputError('track() name must not be empty')
        if len(name) > MAX_NAME_CHARS:
            raise TrackInputError(f'track() name {name[:40]!r}... is {len(name):,} characters '
                                  f'long; a metric name may have at most {MAX_NAME_CHARS:,}. '
                                  f'Put the details in the context instead.')
        try:
            check_text(name, 'track() name')
        except (TypeError, ValueError) as e:
            raise TrackInputError(str(e)) from None

    def _series_slow(self, name, context) -> list:
        self._check_name(name)
        try:
            ctx = check_context(context)
        except (TypeError, ValueError) as e:
            raise TrackInputError(str(e)) from None
        canon = canonical_context(ctx)
        with self._lock:
            if self._retired:  # the journal is closed: its descriptor may be another file's
                raise RunError(f'Run {self.run_hash} is closed; open Run(run_hash='
                               f'{self.run_hash!r}) to continue tracking into it.',
                               self.run_hash)
            entry = self._by_canon.get((name, canon))
            if entry is None and (name, canon) in self._obj_by_canon:
                raise TrackInputError(f'{name!r} {ctx} holds '
                                      f'{self._obj_by_canon[(name, canon)][2]} objects in run '
                                      f'{self.run_hash}; it cannot take numbers. Use another '
                                      f'name.')
            if entry is None:
                sid = self._next_sid
                if sid >= 2 ** 30:
                    raise ValueError('too many series in one run (over a billion)')
                jr.append_series_line(self._series_fd, sid, name, canon)
                self.folder.register(sid, name, canon)
                self._next_sid = sid + 1
                entry = [sid * 2, -1]
                self._by_canon[(name, canon)] = entry
            types = None
            # values that compare equal across types (1 == 1.0 == True == np.int64(1)) need
            # their types checked on every hit; plain strings do not
            if context and any(type(v) is not str for v in context.values()):
                types = tuple(map(type, context.values()))
            try:
                self._series[(name, tuple(context.items()) if context is not None else ())] = (
                    entry, types)
            except TypeError:
                pass  # unhashable context values: always take this path
        return entry

    def _open_segment(self) -> jr.Segment:
        path = jr.segment_path(self.journal_dir, self._seg_no)
        try:
            seg = jr.Segment(path, self._capacity)
        except OSError as e:
            raise RepositoryWriteError(
                f'Cannot create the journal file {path}: {e.strerror}. Free disk space or fix '
                f'the repository permissions; points tracked so far are safe.', path) from None
        self._seg_no += 1
        # small runs get a small file; long runs double it up to the maximum
        self._capacity = min(self._capacity * 2, self._max_capacity)
        self._segments.append(seg)
        return seg

    # flushing ------------------------------------------------------------------------
    def background_flush(self) -> None:
        """A flush from the flush service: failures warn once and are retried later."""
        if self.closed:
            return
        try:
            self.flush()
        except Exception as e:  # never kill the training script; keep the journal
            if not self._warned:
                self._warned = True
                warnings.warn(f'aim: could not flush run {self.run_hash} to disk ({e}); '
                              f'points stay in the journal and will be retried.',
                              RuntimeWarning, stacklevel=1)

    def flush(self) -> None:
        with self._flush_lock:
            if not self.closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        with self._lock:
            segments = list(self._segments)
            obj_pending = self._objects.pending()
        ranges = [(seg, seg.folded, seg.committed) for seg in segments]
        batches = [seg.read(a, b) for seg, a, b in ranges if b > a]
        prepared = None
        if obj_pending and self._object_sink is not None:
            records = [r for entry, stop in obj_pending for r in self._objects.read(entry, stop)]
            prepared = self._object_sink.prepare(records)   # encoded here, not in the caller
        try:
            self._flush_callback(self._fold_batches(batches, prepared))
        except BaseException:
            self.folder.reload()  # the transaction rolled back; the journal keeps the points
            if self._object_sink is not None:
                self._object_sink.reload()
            raise
        jr.fault_point('fold.committed_before_marking')
        for seg, _, b in ranges:
            seg.set_folded(b)
        if obj_pending and self._object_sink is not None:
            with self._lock:
                self._objects.mark_folded(obj_pending)
                self._objects.drop_done()
        self._drop_done_segments()

    def _drop_done_segments(self) -> None:
        """Delete the full segments whose every record is folded (or, in a spool, shipped);
        the newest segment stays, as the one track() writes into."""
        with self._lock:
            done = [s for s in self._segments[:-1] if s.folded >= s.capacity]
            self._segments = [s for s in self._segments if s not in done]
        for seg in done:
            seg.close()
            os.unlink(seg.path)
            jr.fault_point('segment.unlinked')

    def _fold_batches(self, batches, prepared=None):
        def fold(conn):
            changed: list = []
            if prepared:
                changed = self._object_sink.fold(conn, prepared)
            if not batches:
                return changed
            import numpy as np
            arrays = [np.concatenate(col) for col in zip(*batches)] if len(batches) > 1 \
                else batches[0]
            return self.folder.fold(conn, *arrays) + changed
        return fold

    def close(self) -> None:
        if self.closed:
            return
        self._service().remove(self)
        with self._flush_lock:
            if self.closed:
                return
            self._retire()
            self._flush_locked()
            self._unmap()
            remove_journal_dir(self.journal_dir)

    def _retire(self) -> None:
        """Refuse every later point and series: close() flushes what came before."""
        with self._lock:
            self._retire_track()  # no point is acknowledged after the last flush
            self._retired = True

    def _unmap(self) -> None:
        """Closed: unmap the segments and close the series file (the files stay)."""
        self.closed = True
        with self._lock:
            for seg in self._segments:
                seg.close()
            self._segments = []
            self._objects.close()
        os.close(self._series_fd)


class FlushService:
    """One background thread per process that flushes every live writer periodically.

    A thread per run would cost a thread start and join for each run of a sweep; one
    shared thread costs nothing per run.
    """
    _instance: FlushService | None = None
    _instance_lock = threading.Lock()
    thread_name = 'aim-flusher'

    def __init__(self):
        self._writers: list[RunWriter] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> FlushService:
        with cls._instance_lock:
            if cls._instance is None or cls._instance._pid != os.getpid():
                cls._instance = cls()  # first use, or first use in a forked child
            return cls._instance

    def add(self, writer: RunWriter) -> None:
        with self._lock:
            self._writers.append(writer)

    def remove(self, writer: RunWriter) -> None:
        with self._lock:
            if writer in self._writers:
                self._writers.remove(writer)

    def _loop(self) -> None:
        while True:
            with self._lock:
                writers = list(self._writers)
            interval = min((w.flush_interval_s for w in writers), default=FLUSH_INTERVAL_S)
            _time_mod.sleep(interval)
            if not writers:
                continue
            # A training loop that never waits keeps the interpreter lock; every time the
            # fold lets go of it (numpy, SQLite) it waited a whole switch interval (5 ms) to
            # get it back, and a fold of a few hundred thousand points took seconds. While
            # folding, the loop is asked to hand the lock over sooner.
            switch = sys.getswitchinterval()
            sys.setswitchinterval(min(switch, FOLD_SWITCH_INTERVAL_S))
            try:
                for writer in writers:
                    writer.background_flush()
            finally:
                sys.setswitchinterval(switch)


def in_flush_thread() -> bool:
    service = FlushService._instance
    return service is not None and threading.current_thread() is service.thread


def remove_journal_files(journal_dir: str) -> None:
    """Empty a journal whose points are all in the database (temporary segment files of
    an interrupted roll-over held none)."""
    names = os.listdir(journal_dir)
    names.sort(key=lambda n: n == jr.SERIES_FILE)  # series.jsonl last, as in recovery
    for name in names:
        os.unlink(os.path.join(journal_dir, name))


def remove_journal_dir(journal_dir: str) -> None:
    from aim.storage.recovery import remove_journal_dir as remove
    remove(journal_dir)


def _now() -> float:
    return _time_mod.time()


def _json_bytes(meta: dict) -> bytes:
    import json
    return json.dumps(meta, ensure_ascii=False, separators=(',', ':')).encode()


_now = _time_mod.time
