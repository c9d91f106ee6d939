"""The client spool of remote runs: ``track()`` writes into a local journal, a sender ships it.

A remote run (``Run(repo='aim://host:port')``) writes exactly as a local run does: into
memory-mapped journal segments (aim/storage/journal.py), here under a *stream* folder of
the spool (one per writer session)::

    <spool>/<stream id>/
        meta.json     server URL, run hash, stream id, whether offline
        journal/      segments and series.jsonl, as in a repository's journal
        ops.jsonl     numbered operations: open, params, props, logs, close
        lock          held (POSIX record lock) by the writing process while it lives

A sender thread (one per process, shared by every remote run) ships what is new every
``SEND_INTERVAL_S`` as one numbered batch per call (aim/remote/protocol.py) and marks
the journal records and operations acknowledged only once the server answered; segments
wholly acknowledged are deleted. The server applies each batch exactly once
(aim/remote/ingest.py), so a retry never duplicates a point. When the server is down the
spool keeps everything (up to ``AIM_SPOOL_MAX_BYTES``) and the sender retries with backoff;
``close()`` waits at most ``AIM_REMOTE_CLOSE_TIMEOUT_S`` for the last batch, then leaves
the stream for the next aimkit process that opens the server, or for ``aim sync``.

The spool folder is ``AIM_SPOOL_DIR``, else ``$XDG_CACHE_HOME/aim/spool`` (by default
``~/.cache/aim/spool``).
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import warnings
from typing import Any

from aim.errors import AimError, RemoteError
from aim.storage import journal as jr
from aim.storage import locks
from aim.storage.writer import FlushService, RunWriter

SEND_INTERVAL_S = 0.25
HEARTBEAT_S = 15.0
BATCH_POINTS = 1 << 18
MAX_BACKOFF_S = 10.0
DEFAULT_CLOSE_TIMEOUT_S = 30.0
DEFAULT_MAX_BYTES = 8 << 30
META, OPS, LOCK, JOURNAL = 'meta.json', 'ops.jsonl', 'lock', 'journal'


def spool_root() -> str:
    root = os.environ.get('AIM_SPOOL_DIR')
    if not root:
        cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'),
                                                                  '.cache')
        root = os.path.join(cache, 'aim', 'spool')
    return os.path.abspath(os.path.expanduser(root))


def close_timeout_s() -> float:
    return _env_float('AIM_REMOTE_CLOSE_TIMEOUT_S', DEFAULT_CLOSE_TIMEOUT_S)


def max_spool_bytes() -> int:
    return int(_env_float('AIM_SPOOL_MAX_BYTES', DEFAULT_MAX_BYTES))


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise AimError(f'{name}={raw!r} is not a number') from None
    if not value >= 0:
        raise AimError(f'{name}={raw!r} must be 0 or more')
    return value


def new_stream_id() -> str:
    return os.urandom(12).hex()


def write_meta(stream_dir: str, meta: dict) -> None:
    tmp = os.path.join(stream_dir, META + '.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(meta, f)
    os.replace(tmp, os.path.join(stream_dir, META))


def read_meta(stream_dir: str) -> dict | None:
    try:
        with open(os.path.join(stream_dir, META), encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get('run'), str) or \
            not isinstance(meta.get('stream'), str):
        return None
    return meta


# -- operations --------------------------------------------------------------------------
class OpsLog:
    """``ops.jsonl``: the numbered operations of one stream; one ``write()`` per line, so
    a kill leaves whole lines (a torn last line is ignored when read back)."""

    def __init__(self, stream_dir: str):
        self.path = os.path.join(stream_dir, OPS)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._pending: list[dict] = []
        self._sizes: dict[int, int] = {}
        self._next = 0

    def append(self, op: dict[str, Any]) -> int:
        with self._lock:
            seq = self._next
            rec = {'seq': seq, **op}
            line = (json.dumps(rec, ensure_ascii=False, allow_nan=False) + '\n').encode()
            os.write(self._fd, line)
            self._next += 1
            self._pending.append(rec)
            self._sizes[seq] = len(line)
            return seq

    def size(self, seq: int) -> int:
        return self._sizes.get(seq, 0)

    def pending(self) -> list[dict]:
        with self._lock:
            return list(self._pending)

    def ack(self, next_seq: int) -> None:
        with self._lock:
            self._pending = [op for op in self._pending if op['seq'] >= next_seq]
            self._sizes = {k: v for k, v in self._sizes.items() if k >= next_seq}

    def close(self) -> None:
        os.close(self._fd)


def read_ops(stream_dir: str) -> list[dict]:
    try:
        with open(os.path.join(stream_dir, OPS), 'rb') as f:
            raw = f.read()
    except OSError:
        return []
    out = []
    for line in raw.split(b'\n'):
        try:
            rec = json.loads(line)
        except ValueError:
            continue   # a torn last line: that operation never returned to its caller
        if isinstance(rec, dict) and type(rec.get('seq')) is int:
            out.append(rec)
    return out


# -- where batches go ------------------------------------------------------------------------
class HttpTarget:
    """Batches to an ``aim server`` (aim/remote/client.py)."""

    def __init__(self, client):
        self.client = client
        self.url = client.url

    def send(self, stream: str, body: bytes) -> dict:
        return self.client.send_batch(stream, body)

    def mark(self, stream: str) -> dict:
        return self.client.stream_mark(stream)


class LocalTarget:
    """Batches applied straight to a local repository (``aim sync --repo DIR``)."""

    def __init__(self, store, writer: str = 'aim sync'):
        self.store = store
        self.url = store.root
        self.writer = writer

    def send(self, stream: str, body: bytes) -> dict:
        from aim.remote import protocol
        from aim.remote.ingest import apply_batch
        header, records = protocol.decode(body)
        return apply_batch(self.store, header, records, writer=self.writer)

    def mark(self, stream: str) -> dict:
        from aim.remote.ingest import stream_mark
        return stream_mark(self.store.db, stream)


def _batch_body(stream: str, run_hash: str, ranges: list, records, names: dict,
                ops: list) -> bytes:
    """Encode one batch: ``ranges`` [[segment, start, stop]], ``records`` the journal
    columns of those ranges in order (or None), ``names`` local id -> (name, context)."""
    import numpy as np

    from aim.remote import protocol
    from aim.storage.recovery import UNKNOWN_SERIES
    series = {}
    if records is not None:
        for i in np.unique(records[0] >> 1).tolist():
            series[str(i)] = list(names.get(i) or (UNKNOWN_SERIES.format(i), '{}'))
    header = {'stream': stream, 'run': run_hash, 'ranges': ranges, 'series': series,
              'ops': ops}
    cols = None if records is None else (records[0], records[1], records[2], records[4],
                                         records[5])
    return protocol.encode(header, cols)


def _concat(parts: list):
    import numpy as np
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(col) for col in zip(*parts))


def _take(queue: list, room: int) -> list:
    """Take up to ``room`` records off ``queue`` (entries ``(key, start, stop)`` in journal
    order, the first one shortened when it does not fit): the slices taken."""
    taken = []
    while queue and room:
        key, start, stop = queue[0]
        end = min(stop, start + room)
        taken.append((key, start, end))
        room -= end - start
        if end < stop:
            queue[0] = (key, end, stop)
        else:
            queue.pop(0)
    return taken


def _covered(mark: dict, seg: int, stop: int) -> bool:
    return (mark['seg'], mark['pos']) >= (seg, stop)


# -- the live writer -----------------------------------------------------------------------
class _SpoolFolder:
    """What the journal writer needs of a folder: the series that exist already (their
    last steps, so ``step=None`` continues a resumed run) and the local id -> name map."""

    class _Known:
        __slots__ = ('last_step',)

        def __init__(self, last_step):
            self.last_step = last_step

    def __init__(self, existing: dict[tuple[str, str], int | None]):
        self.by_key = {key: self._Known(last) for key, last in existing.items()}
        self.names: dict[int, tuple[str, str]] = {}

    def register(self, local_id: int, name: str, context: str) -> None:
        self.names[local_id] = (name, context)

    def reload(self) -> None:
        pass


class _KnownObjects:
    """The object series a resumed remote run has already: (name, context) -> (kind,
    last step). A spool never folds objects itself: it ships them as operations."""

    def __init__(self, known: dict):
        self._known = known

    def existing(self) -> dict:
        return self._known


class SenderService(FlushService):
    """The thread that ships every remote run's spool of this process."""
    _instance = None
    _instance_lock = threading.Lock()
    thread_name = 'aim-sender'


class SpoolWriter(RunWriter):
    """A run's journal in the spool; its "flush" ships new records to the server."""

    def __init__(self, run_hash: str, stream_dir: str, stream: str, target, ops: OpsLog,
                 existing: dict, *, offline: bool, existing_objects: dict | None = None):
        self.stream = stream
        self.stream_dir = stream_dir
        self.target = target
        self.ops = ops
        self.offline = offline
        self._spool_folder = _SpoolFolder(existing)
        self._failures = 0
        self._next_try = 0.0
        self._last_send = time.monotonic()
        self._warned_down = False
        self._max_bytes = max_spool_bytes()
        self._dropped = 0
        self._discarding = False
        self._sent_blobs: set[str] = set()
        super().__init__(run_hash, os.path.join(stream_dir, JOURNAL), self._spool_folder,
                         flush_callback=self._no_fold, flush_interval_s=SEND_INTERVAL_S,
                         objects=_KnownObjects(existing_objects or {}))

    @staticmethod
    def _no_fold(fold) -> None:   # never called: _flush_locked ships instead of folding
        raise AssertionError('a spool writer ships, it does not fold')

    def _service(self) -> Any:  # type: ignore[override]
        if self.offline:
            return _NoService()
        return SenderService.get()

    # the spool bound ---------------------------------------------------------------------
    def _open_segment(self) -> jr.Segment:
        used = sum(os.path.getsize(s.path) for s in self._segments if not s.folded >=
                   s.capacity) if self._segments else 0
        if used + jr.segment_size(self._capacity) > self._max_bytes:
            return self._discard_segment()
        if self._discarding:
            self._discarding = False
            warnings.warn(f'aim: the spool of run {self.run_hash} has room again; '
                          f'{self._dropped:,} points tracked while it was full were dropped.',
                          RuntimeWarning, stacklevel=2)
        return super()._open_segment()

    def _discard_segment(self) -> jr.Segment:
        """A full spool: points go to a segment that is never shipped (and say so)."""
        if not self._discarding:
            self._discarding = True
            warnings.warn(
                f'aim: the spool of run {self.run_hash} ({self.stream_dir}) is full '
                f'(AIM_SPOOL_MAX_BYTES={self._max_bytes:,}) because the server has not '
                f'taken its points for a while; new points are dropped until it does. Points '
                f'already in the spool are kept.', RuntimeWarning, stacklevel=3)
        tmp = os.path.join(self.journal_dir, f'discard-{os.getpid()}.seg')
        seg = jr.Segment(tmp, 1 << 12)
        os.unlink(tmp)
        self._dropped += seg.capacity
        return seg

    # shipping ------------------------------------------------------------------------------
    def background_flush(self) -> None:
        if self.closed or time.monotonic() < self._next_try:
            return
        try:
            self.flush()
        except Exception as e:  # never kill the training script; the spool keeps it all
            self._failures += 1
            self._next_try = time.monotonic() + min(MAX_BACKOFF_S,
                                                    SEND_INTERVAL_S * 2 ** self._failures)
            if not self._warned_down:
                self._warned_down = True
                warnings.warn(f'aim: cannot ship run {self.run_hash} to {self.target.url} '
                              f'({e}); its points are kept in the spool ({self.stream_dir}) '
                              f'and sent when the server is reachable again.',
                              RuntimeWarning, stacklevel=1)
        else:
            if self._warned_down:
                self._warned_down = False
                warnings.warn(f'aim: {self.target.url} is reachable again; run '
                              f'{self.run_hash} is being shipped.', RuntimeWarning,
                              stacklevel=1)
            self._failures = 0

    def flush(self) -> None:
        if self.offline:
            return
        with self._flush_lock:
            if not self.closed:
                self._flush_locked()

    def _objects_to_ops(self) -> None:
        """Encode the object journal's new records (here, in the sender thread) into
        numbered operations: from then on they ship, and are retried, as operations."""
        with self._lock:
            pending = self._objects.pending()
        if not pending:
            return
        records = [r for entry, stop in pending for r in self._objects.read(entry, stop)]
        for op in objects_to_ops(records, self._sent_blobs):
            self.ops.append(op)
        with self._lock:
            self._objects.mark_folded(pending)
            self._objects.drop_done()

    def _flush_locked(self, heartbeat: bool = True) -> None:
        self._objects_to_ops()
        with self._lock:
            segments = list(self._segments)
        pending = [(seg, seg.folded, seg.committed) for seg in segments
                   if seg.committed > seg.folded]
        all_ops = self.ops.pending()
        ops = _take_ops(all_ops, self.ops.size)
        due = heartbeat and time.monotonic() - self._last_send > HEARTBEAT_S
        if not pending and not ops and not due:
            return
        while True:
            ranges = [(seg, _segment_number(seg.path), a, b)
                      for seg, a, b in _take(pending, BATCH_POINTS)]
            parts = [seg.read(a, b) for seg, _, a, b in ranges]
            body = _batch_body(self.stream, self.run_hash,
                               [[n, a, b] for _, n, a, b in ranges], _concat(parts),
                               self._spool_folder.names, ops)
            mark = self.target.send(self.stream, body)
            self._last_send = time.monotonic()
            for seg, n, _, b in ranges:
                if not _covered(mark, n, b):
                    raise RemoteError(f'the server acknowledged run {self.run_hash} up to '
                                      f'{mark}, short of segment {n} record {b}',
                                      self.target.url)
                seg.set_folded(b)
            self.ops.ack(int(mark['ops']))
            ops = _take_ops(self.ops.pending(), self.ops.size)
            if not pending and not ops:
                break
        self._drop_done_segments()

    def unsent(self) -> tuple[int, int]:
        """(points, operations) not acknowledged by the server yet."""
        with self._lock:
            points = sum(s.committed - s.folded for s in self._segments)
        return points, len(self.ops.pending())

    def close(self, timeout_s: float | None = None) -> bool:  # type: ignore[override]
        """Ship what is left (waiting at most ``timeout_s``) and stop. True when the server
        has everything; otherwise the stream stays in the spool for a later sync."""
        if self.closed:
            return not any(self.unsent())
        self._service().remove(self)
        timeout_s = close_timeout_s() if timeout_s is None else timeout_s
        with self._flush_lock:
            if self.closed:
                return not any(self.unsent())
            self._retire()
            deadline = time.monotonic() + timeout_s
            error: Exception | None = None
            delay = 0.1
            while not self.offline:
                try:
                    self._flush_locked(heartbeat=False)
                    error = None
                    break
                except Exception as e:
                    error = e
                    if time.monotonic() + delay > deadline:
                        break
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
            points, ops = self.unsent()
            self._unmap()
            self.ops.close()
        if not points and not ops and not self.offline:
            return True
        if not self.offline:
            warnings.warn(
                f'aim: run {self.run_hash}: {points:,} points and {ops} other changes could not '
                f'be shipped to {self.target.url} within {timeout_s:g} s ({error}). They are '
                f'kept in the spool ({self.stream_dir}); the next aimkit process that opens '
                f'that server ships them, or run `aim sync`.', RuntimeWarning, stacklevel=3)
        return False


class _NoService:
    """Offline runs are never shipped by this process."""

    def add(self, writer) -> None:
        pass

    def remove(self, writer) -> None:
        pass


def _segment_number(path: str) -> int:
    return int(os.path.basename(path)[:-len(jr.SEGMENT_SUFFIX)])


def remove_stream(stream_dir: str) -> None:
    """Delete a stream whose every point and operation the server acknowledged."""
    shutil.rmtree(stream_dir, ignore_errors=True)


# -- shipping a stream from its files (a dead or offline writer's) -----------------------------
class ShipResult:
    def __init__(self, stream: str, run_hash: str | None):
        self.stream, self.run = stream, run_hash
        self.points = 0      # points sent that the server had not applied before
        self.done = False    # the stream is complete on the server and was removed
        self.skipped: str | None = None   # why the stream was left alone

    def __repr__(self) -> str:
        return (f'ShipResult(stream={self.stream!r}, run={self.run!r}, points={self.points}, '
                f'done={self.done}, skipped={self.skipped!r})')


def ship_stream(stream_dir: str, target, *, live: bool = False) -> ShipResult:
    """Ship the unacknowledged part of one stream folder to ``target``.

    A stream whose writer is alive is left alone unless ``live`` (``aim sync --watch`` on an
    offline run that is still tracking): then what it has written so far is shipped and
    nothing is deleted. A dead writer's stream gets a closing operation (its run ends) and
    is removed once the server has all of it."""
    meta = read_meta(stream_dir)
    stream = os.path.basename(stream_dir)
    result = ShipResult(stream, meta.get('run') if meta else None)
    if meta is None:
        result.skipped = 'no readable meta.json (not a spool stream)'
        return result
    run_hash = meta['run']
    lock = os.path.join(stream_dir, LOCK)
    if locks.held_here(lock):
        result.skipped = 'written by this process'
        return result
    owned, _ = locks.try_acquire(lock)
    if not owned and not live:
        result.skipped = 'its writer is alive'
        return result
    try:
        _ship_files(stream_dir, stream, run_hash, target, owned, result)
    finally:
        if owned:
            locks.release(lock)
    if result.done:
        remove_stream(stream_dir)
    return result


def _ship_files(stream_dir: str, stream: str, run_hash: str, target, owned: bool,
                result: ShipResult) -> None:
    jdir = os.path.join(stream_dir, JOURNAL)
    mark = target.mark(stream)
    names, _ = jr.read_series_file(jdir)
    if owned:
        _append_object_ops(stream_dir, jdir)
    ops = [op for op in read_ops(stream_dir) if op['seq'] >= mark['ops']]
    if owned and not any(op.get('op') == 'close' for op in read_ops(stream_dir)):
        # the writer died (or was offline and is done): its run ends with its last point
        ops.append(_append_close(stream_dir))
    queue: list = []    # (segment number, start, stop) not applied yet
    images: dict = {}   # segment number -> (position of its first record, records)
    last_time = None
    for n in jr.list_segments(jdir):
        img = jr.read_segment_file(jr.segment_path(jdir, n))
        if img.records is None:
            continue
        first = img.committed - len(img.records[0])
        start = max(first, mark['pos']) if n == mark['seg'] else first
        if n < mark['seg'] or start >= img.committed:
            continue
        images[n] = (first, img.records)
        queue.append((n, start, img.committed))
        last_time = float(img.records[5][-1])
    if ops and ops[-1].get('op') == 'close' and last_time is not None:
        ops[-1]['end_time'] = max(ops[-1].get('end_time') or 0, last_time)
    sent_any = False
    while queue or ops or not sent_any:
        ranges = _take(queue, BATCH_POINTS)
        ops, later = _split_ops(ops)
        parts = [tuple(col[a - images[n][0]:b - images[n][0]] for col in images[n][1])
                 for n, a, b in ranges]
        records = _concat(parts)
        body = _batch_body(stream, run_hash, [list(r) for r in ranges], records, names, ops)
        mark = target.send(stream, body)
        if records is not None:
            result.points += int(len(records[0]))
        ops = later
        sent_any = True
    if owned:
        # every point is on the server now; the stream is done once its close is too
        all_ops = read_ops(stream_dir)
        closed = any(op.get('op') == 'close' for op in all_ops)
        result.done = closed and mark['ops'] > max(op['seq'] for op in all_ops)


# -- rich objects as operations ----------------------------------------------------------------
MAX_OPS_BYTES = 16 << 20     # a batch's operations (its JSON header) stay below this


def objects_to_ops(records: list, sent: set[str]) -> list[dict]:
    """One ``objects`` operation per journal record: the objects encoded (PNG, WAV, ...)
    with their metadata, and the bytes (base64) of each blob not sent before by this
    writer (``sent``; the server keeps blobs by digest, so a repeat costs nothing there)."""
    import base64

    from aim.storage.blobs import _check, digest_of
    from aim.storage.objects import encode_record
    out = []
    for rec in records:
        blobs: dict[str, str] = {}

        def put(data: bytes, blobs=blobs) -> str:
            data = _check(data)
            digest = digest_of(data)
            if digest not in sent:
                blobs[digest] = base64.b64encode(data).decode('ascii')
            return digest
        items = encode_record(rec, put, _warn_object)
        if items is None:
            continue
        sent.update(blobs)
        out.append({'op': 'objects', 'kind': rec.kind, 'name': rec.name,
                    'context': rec.context, 'step': rec.step, 'epoch': rec.epoch,
                    'time': rec.time, 'list': rec.is_list, 'items': items, 'blobs': blobs})
    return out


def _warn_object(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=2)


def _take_ops(ops: list[dict], size) -> list[dict]:
    """The first operations whose lines add up to at most MAX_OPS_BYTES (at least one)."""
    total, n = 0, 0
    for op in ops:
        total += size(op['seq'])
        if n and total > MAX_OPS_BYTES:
            break
        n += 1
    return ops[:n]


def _split_ops(ops: list[dict]) -> tuple[list[dict], list[dict]]:
    sizes = {op['seq']: len(json.dumps(op)) for op in ops}
    first = _take_ops(ops, sizes.get)
    return first, ops[len(first):]


def _append_object_ops(stream_dir: str, jdir: str) -> None:
    """A dead writer's object journal becomes operations (appended to ops.jsonl), then
    goes; records it had converted already come again, which the server applies as the
    same values."""
    from aim.storage.objects import journal_files, read_records
    paths = journal_files(jdir)
    if not paths:
        return
    records = [r for p in paths for r in read_records(p)[0]]
    new = objects_to_ops(records, set())
    if new:
        existing = read_ops(stream_dir)
        seq = max((op['seq'] for op in existing), default=-1) + 1
        with open(os.path.join(stream_dir, OPS), 'ab') as f:
            for op in new:
                f.write((json.dumps({'seq': seq, **op}, ensure_ascii=False,
                                    allow_nan=False) + '\n').encode())
                seq += 1
    for p in paths:
        os.unlink(p)


def _append_close(stream_dir: str) -> dict:
    """Record the end of a stream whose writer is gone, durably, before shipping it."""
    existing = read_ops(stream_dir)
    seq = max((op['seq'] for op in existing), default=-1) + 1
    try:
        end = os.path.getmtime(os.path.join(stream_dir, JOURNAL))
    except OSError:
        end = time.time()
    rec = {'seq': seq, 'op': 'close', 'end_time': end}
    with open(os.path.join(stream_dir, OPS), 'ab') as f:
        f.write((json.dumps(rec) + '\n').encode())
    return rec


def list_streams(root: str | None = None) -> list[str]:
    root = root or spool_root()
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [os.path.join(root, n) for n in names if os.path.isdir(os.path.join(root, n))
            and os.path.exists(os.path.join(root, n, META))]


# -- picking up abandoned streams ------------------------------------------------------------
_pickup_started: set[str] = set()
_pickup_lock = threading.Lock()


def start_pickup(store) -> None:
    """Ship, in a background thread, the streams of this server that a dead writer (or one
    whose ``close()`` timed out) left in the spool; once per server and process."""
    with _pickup_lock:
        key = f'{os.getpid()}:{store.url}'
        if key in _pickup_started or os.environ.get('AIM_SPOOL_NO_PICKUP'):
            return
        _pickup_started.add(key)
    streams = [d for d in list_streams() if (read_meta(d) or {}).get('url') == store.url
               and not (read_meta(d) or {}).get('offline')]
    if not streams:
        return
    thread = threading.Thread(target=_pickup, args=(store, streams), name='aim-spool-pickup',
                              daemon=True)
    thread.start()


def _pickup(store, streams: list[str]) -> None:
    target = store.spool_target(own_connection=True)
    for stream_dir in streams:
        try:
            result = ship_stream(stream_dir, target)
        except Exception as e:   # a later process (or `aim sync`) tries again
            warnings.warn(f'aim: could not ship the spooled stream {stream_dir} to '
                          f'{store.url} ({e}); `aim sync` retries it.', RuntimeWarning,
                          stacklevel=1)
            continue
        if result.points:
            warnings.warn(f'aim: shipped {result.points:,} spooled points of run {result.run} '
                          f'(left by an earlier process) to {store.url}.', RuntimeWarning,
                          stacklevel=1)
