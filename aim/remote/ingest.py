"""Applying spool batches to a repository: exactly once, whatever was retried.

Used by ``aim server`` for every batch a client ships, and by ``aim sync`` when it
uploads a spool into a local repository. A *stream* is one writer session of one run
(``Run()`` in one process, see aim/remote/spool.py). The repository keeps, per stream,
how far its journal and its operations have been applied (``remote_streams``: the journal
position ``(segment, record)`` and the next operation number); that row commits in the
same transaction as the points and operations it covers. A batch that is retried after a
timeout, a server restart or a client restart is therefore applied only past that mark:
nothing is lost (the client drops its spool only once a batch is acknowledged) and
nothing is applied twice.
"""
from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from aim.errors import InputError
from aim.storage.encoding import MAX_PARAMS_BYTES
from aim.storage.journal import RUN_HASH_RE

STREAM_RE = re.compile(r'^[A-Za-z0-9_-]{8,64}$')
# a writer session counts as live this long after its last batch (heartbeats come every
# HEARTBEAT_S); `run.active` is true meanwhile
LEASE_S = 60.0
MAX_SERIES_PER_BATCH = 100_000
MAX_OPS_PER_BATCH = 10_000
OPS = ('open', 'props', 'param', 'param_del', 'logs', 'close', 'objects')
# props a client may set; the rest (hash, end_time, updated_at) the server manages
CLIENT_PROPS = ('name', 'experiment', 'description', 'tags', 'archived', 'creation_time',
                'artifacts_uri', 'artifacts', 'progress', 'successful_finish', 'notes')

_run_locks: dict[str, threading.Lock] = {}
_run_locks_guard = threading.Lock()


class BatchRefused(InputError):
    """A batch whose content is not acceptable (the message says what); nothing applied."""


class Mark(dict):
    """The position a stream has been applied up to: ``{'seg', 'pos', 'ops'}``."""


def stream_mark(db, stream: str) -> Mark:
    rows = db.query('SELECT seg, pos, ops, run_hash, closed FROM remote_streams WHERE stream=?',
                    (stream,))
    if not rows:
        return Mark(seg=-1, pos=0, ops=0, run=None, closed=False)
    seg, pos, ops, run_hash, closed = rows[0]
    return Mark(seg=seg, pos=pos, ops=ops, run=run_hash, closed=bool(closed))


def check_header(header: dict, records) -> None:
    """Refuse a batch whose header is not what a client writes (BatchRefused)."""
    stream, run = header.get('stream'), header.get('run')
    if not isinstance(stream, str) or not STREAM_RE.match(stream):
        raise BatchRefused(f'bad stream id {stream!r:.80}')
    if not isinstance(run, str) or not RUN_HASH_RE.match(run):
        raise BatchRefused(f'bad run hash {run!r:.80}')
    n = 0 if records is None else len(records[0])
    ranges = header.get('ranges', [])
    if not isinstance(ranges, list) or not all(
            isinstance(r, list) and len(r) == 3 and all(type(x) is int and x >= 0 for x in r)
            and r[1] <= r[2] for r in ranges):
        raise BatchRefused('ranges must be a list of [segment, start, stop] integers')
    if sum(r[2] - r[1] for r in ranges) != n:
        raise BatchRefused(f'the ranges cover {sum(r[2] - r[1] for r in ranges)} records, the '
                           f'batch holds {n}')
    if any((a[0], a[2]) > (b[0], b[1]) for a, b in zip(ranges, ranges[1:])):
        raise BatchRefused('ranges must follow each other in journal order')
    series = header.get('series', {})
    if not isinstance(series, dict) or len(series) > MAX_SERIES_PER_BATCH:
        raise BatchRefused('series must be an object of local id -> [name, context]')
    for key, value in series.items():
        if not key.isdigit() or not (isinstance(value, list) and len(value) == 2
                                     and all(isinstance(v, str) for v in value)):
            raise BatchRefused(f'bad series entry {key!r:.40}: {value!r:.80}')
        try:
            ctx = json.loads(value[1])
        except ValueError:
            raise BatchRefused(f'series {value[0]!r:.80}: context is not JSON') from None
        if not isinstance(ctx, dict):
            raise BatchRefused(f'series {value[0]!r:.80}: context is not a JSON object')
    if records is not None:
        import numpy as np
        ids = np.unique(records[0] >> 1)
        missing = [int(i) for i in ids if str(int(i)) not in series]
        if missing:
            raise BatchRefused(f'points of series {missing[:5]} that the batch does not name')
    ops = header.get('ops', [])
    if not isinstance(ops, list) or len(ops) > MAX_OPS_PER_BATCH:
        raise BatchRefused(f'ops must be a list of at most {MAX_OPS_PER_BATCH}')
    last = -1
    for op in ops:
        if not isinstance(op, dict) or type(op.get('seq')) is not int or op.get('op') not in OPS:
            raise BatchRefused(f'bad operation {op!r:.80}')
        if op['seq'] <= last:
            raise BatchRefused('operations must come in increasing seq order')
        last = op['seq']


def _run_lock(run_hash: str) -> threading.Lock:
    with _run_locks_guard:
        lock = _run_locks.get(run_hash)
        if lock is None:
            lock = _run_locks[run_hash] = threading.Lock()
        return lock


def apply_batch(store, header: dict, records, *, writer: str | None = None) -> Mark:
    """Apply one decoded batch to ``store`` (a RepoStore) and return the stream's new mark.

    Holds the run's write lock while it applies (other server processes wait for it; a
    local process writing the run makes it fail with RunLockedError)."""
    check_header(header, records)
    run_hash = header['run']
    with _run_lock(run_hash), store.batch_lock(run_hash):
        return _apply_locked(store, header, records, writer)


def _apply_locked(store, header: dict, records, writer: str | None) -> Mark:
    from aim.storage.folder import SeriesFolder
    stream, run_hash = header['stream'], header['run']
    data = store.run_data(run_hash)
    now = time.time()
    with store.db.write() as conn:
        store.db.lock_run(conn, run_hash)   # PostgreSQL: every server waits for it
        row = conn.execute('SELECT seg, pos, ops, run_hash FROM remote_streams WHERE stream=?',
                           (stream,)).fetchone()
        seg_mark, pos_mark, ops_mark = (row[0], row[1], row[2]) if row else (-1, 0, 0)
        if row and row[3] != run_hash:
            raise BatchRefused(f'stream {stream} belongs to run {row[3]}, not {run_hash}')
        exists = conn.execute('SELECT 1 FROM run_props WHERE run_hash=? LIMIT 1',
                              (run_hash,)).fetchone() is not None
        closed = False
        changed = False
        # the run's index row is rebuilt only when its props or params may have changed
        # (points and logs only touch updated_at): two queries fewer a batch
        reindex = not exists
        object_folder = None
        for op in header.get('ops', []):
            if op['seq'] < ops_mark:
                continue   # applied by an earlier try of this batch
            kind = op['op']
            if kind == 'open':
                exists = _op_open(conn, data, op, exists, now)
            else:
                if not exists:
                    exists = _create_run(conn, data, {}, now)
                if kind == 'props':
                    _op_props(conn, data, op)
                elif kind in ('param', 'param_del'):
                    _op_param_path(conn, data, op)
                elif kind == 'logs':
                    _op_logs(conn, run_hash, op)
                elif kind == 'objects':
                    if object_folder is None:
                        from aim.storage.objects import ObjectFolder
                        object_folder = ObjectFolder(store.db, run_hash)
                    _op_objects(conn, store, object_folder, op)
                elif kind == 'close':
                    end = op.get('end_time')
                    data.put_props(conn, {'end_time': float(end) if isinstance(
                        end, (int, float)) and end == end else now})
                    closed = True
            ops_mark = op['seq'] + 1
            changed = True
            reindex = reindex or kind not in ('logs', 'objects')
        ranges = header.get('ranges') or []
        new_seg, new_pos = max([(seg_mark, pos_mark)] + [(r[0], r[2]) for r in ranges[-1:]])
        if records is not None:
            keep = _unapplied(ranges, seg_mark, pos_mark)
            if keep is not None:
                records = tuple(col[keep] for col in records)
            if len(records[0]):
                if not exists:
                    exists = _create_run(conn, data, {'creation_time': float(records[5][0])},
                                         now)
                    reindex = True
                folder = SeriesFolder(data)
                for local_id, (name, context) in header['series'].items():
                    folder.register(int(local_id), name, context)
                folder.fold(conn, *records)
                changed = True
        if changed and exists:
            data.put_props(conn, {'updated_at': now})
            if reindex or not conn.execute('UPDATE runs SET updated_at=? WHERE hash=?',
                                           (now, run_hash)).rowcount:
                store._index_run(conn, data)
        conn.execute('INSERT INTO remote_streams(stream, run_hash, seg, pos, ops, closed, '
                     'updated, writer) VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(stream) DO '
                     'UPDATE SET seg=excluded.seg, pos=excluded.pos, ops=excluded.ops, '
                     'closed=CASE WHEN remote_streams.closed > excluded.closed '
                     'THEN remote_streams.closed ELSE excluded.closed END, '
                     'updated=excluded.updated, '
                     'writer=COALESCE(excluded.writer, remote_streams.writer)',
                     (stream, run_hash, new_seg, new_pos, ops_mark, int(closed), now, writer))
    return Mark(seg=new_seg, pos=new_pos, ops=ops_mark, run=run_hash, closed=closed)


def _op_objects(conn, store, folder, op: dict) -> None:
    """One step of an object series (spool.objects_to_ops): blobs, checked against their
    digests, then the objects' metadata."""
    import base64
    import binascii

    from aim.storage.blobs import DatabaseBlobs, digest_of
    from aim.storage.objects import KINDS, Record, _digests
    kind, name, context = op.get('kind'), op.get('name'), op.get('context')
    step, epoch, t = op.get('step'), op.get('epoch'), op.get('time')
    items, blobs = op.get('items'), op.get('blobs') or {}
    if kind not in KINDS or not isinstance(name, str) or not name or \
            not isinstance(context, str) or type(step) is not int or \
            not (epoch is None or type(epoch) is int) or \
            not isinstance(t, (int, float)) or not isinstance(items, list) or not items or \
            not all(isinstance(m, dict) for m in items) or not isinstance(blobs, dict):
        raise BatchRefused(f'bad objects operation {op.get("seq")}')
    try:
        ctx = json.loads(context)
    except ValueError:
        ctx = None
    if not isinstance(ctx, dict):
        raise BatchRefused(f'objects operation {op.get("seq")}: context is not a JSON object')
    try:
        json.dumps(items, allow_nan=False)
    except (TypeError, ValueError):
        raise BatchRefused(f'objects operation {op.get("seq")}: metadata that JSON cannot '
                           f'hold (NaN, infinity)') from None
    in_db = isinstance(store.blobs, DatabaseBlobs)
    for digest, text in blobs.items():
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise BatchRefused(f'objects operation {op.get("seq")}: blob {digest:.80} is not '
                               f'base64') from None
        if digest_of(data) != digest:
            raise BatchRefused(f'objects operation {op.get("seq")}: blob {digest:.80} does not '
                               f'match its bytes')
        if in_db:
            conn.execute('INSERT OR IGNORE INTO blobs VALUES(?, ?, ?)', (digest, len(data), data))
        else:
            store.blobs.put(data)
    for digest in _digests(items):
        if digest not in blobs and not (
                conn.execute('SELECT 1 FROM blobs WHERE digest=?', (digest,)).fetchone()
                if in_db else store.blobs.exists(digest)):
            raise BatchRefused(f'objects operation {op.get("seq")}: blob {digest:.80} was '
                               f'never sent')
    rec = Record(kind, name, context, step, epoch, float(t), [], 0, bool(op.get('list')))
    folder.fold(conn, [(rec, items)])


def _unapplied(ranges: list, seg_mark: int, pos_mark: int):
    """A boolean mask of the records past the mark, or None when all of them are."""
    import numpy as np
    if not ranges or (ranges[0][0], ranges[0][1]) >= (seg_mark, pos_mark):
        return None
    parts = []
    for seg, start, stop in ranges:
        n = stop - start
        if seg < seg_mark:
            parts.append(np.zeros(n, bool))
        elif seg == seg_mark:
            parts.append(np.arange(start, stop) >= pos_mark)
        else:
            parts.append(np.ones(n, bool))
    return np.concatenate(parts)


def _clean_props(props: Any) -> dict[str, Any]:
    if not isinstance(props, dict):
        raise BatchRefused('props must be a JSON object')
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key not in CLIENT_PROPS:
            continue
        if key in ('name', 'experiment', 'description', 'notes') and value is not None and \
                not isinstance(value, str):
            raise BatchRefused(f'prop {key} must be a string')
        if key == 'tags' and not (isinstance(value, list) and
                                  all(isinstance(t, str) for t in value)):
            raise BatchRefused('prop tags must be a list of strings')
        if key == 'archived':
            value = bool(value)
        if key == 'creation_time' and not (isinstance(value, (int, float)) and value == value):
            raise BatchRefused('prop creation_time must be a number')
        if key == 'artifacts_uri' and value is not None and not isinstance(value, str):
            raise BatchRefused('prop artifacts_uri must be a string')
        if key == 'artifacts' and not (isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(v, dict) and isinstance(v.get('uri'), str)
                for k, v in value.items())):
            raise BatchRefused('prop artifacts must map names to {"uri": ..., "path": ...}')
        if key == 'progress' and value is not None and not isinstance(value, dict):
            raise BatchRefused('prop progress must be an object')
        if key == 'successful_finish':
            value = bool(value)
        out[key] = value
    return out


def _create_run(conn, data, props: dict, now: float) -> bool:
    base: dict[str, Any] = {
            'name': f'Run: {data.run_hash}', 'experiment': 'default', 'description': None,
            'tags': [], 'archived': False, 'creation_time': now, 'end_time': None,
            'updated_at': now}
    base.update(props)
    data.put_props(conn, base)
    data.put_params_text(conn, '{}')
    return True


def _op_open(conn, data, op: dict, exists: bool, now: float) -> bool:
    props = _clean_props(op.get('props') or {})
    if not exists:
        return _create_run(conn, data, props, now)
    # a resumed run: live again, and in the experiment it was reopened with, if any
    update: dict[str, Any] = {'end_time': None}
    experiment = op.get('experiment')
    if isinstance(experiment, str):
        update['experiment'] = experiment
    data.put_props(conn, update)
    return True


def _op_props(conn, data, op: dict) -> None:
    props = _clean_props(op.get('props'))
    if props:
        data.put_props(conn, props)


def _op_param_path(conn, data, op: dict) -> None:
    """One key of the params set (``param``) or deleted (``param_del``); path None is
    the whole tree."""
    from aim.storage.encoding import (
        delete_param_path,
        dumps_params,
        loads_params,
        set_param_path,
    )
    path = op.get('path')
    if path is not None and not (isinstance(path, list) and path and
                                 all(isinstance(p, str) for p in path)):
        raise BatchRefused('a param path is a non-empty list of strings, or null')
    row = conn.execute("SELECT value FROM run_props WHERE run_hash=? AND key='params'",
                       (data.run_hash,)).fetchone()
    try:
        tree: Any = loads_params(row[0]) if row else {}
    except ValueError:
        tree = {}   # damaged params (check names them): the change starts them again
    if not isinstance(tree, dict):
        tree = {}
    if op['op'] == 'param':
        try:
            value = loads_params(op.get('value'))
        except (TypeError, ValueError, RecursionError):
            raise BatchRefused('a param value must be JSON text') from None
        if path is None:
            if not isinstance(value, dict):
                raise BatchRefused('run[...] = value needs a dict')
            tree = value
        else:
            set_param_path(tree, path, value)
    elif path is None:
        tree = {}
    else:
        delete_param_path(tree, path)
    text = dumps_params(tree)
    if len(text.encode()) > MAX_PARAMS_BYTES:
        # possible only for a run resumed offline (the client could not see the server's
        # params): that change is dropped, rather than stopping the stream's points
        return
    data.put_params_text(conn, text)


def _op_logs(conn, run_hash: str, op: dict) -> None:
    lines = op.get('lines')
    if not isinstance(lines, list) or not all(
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], (int, float))
            and isinstance(x[1], str) for x in lines):
        raise BatchRefused('logs must be a list of [time, line]')
    first = conn.execute('SELECT COALESCE(MAX(id), -1) + 1 FROM logs WHERE run_hash=?',
                         (run_hash,)).fetchone()[0]
    conn.executemany('INSERT OR REPLACE INTO logs VALUES(?, ?, ?, ?)',
                     [(run_hash, first + i, float(t), line) for i, (t, line) in enumerate(lines)])


def live_stream_runs(db, run_hash: str | None = None) -> set[str]:
    """Runs with a remote writer session seen within the lease and not closed."""
    since = time.time() - LEASE_S
    try:
        if run_hash is None:
            rows = db.query('SELECT DISTINCT run_hash FROM remote_streams WHERE closed=0 AND '
                            'updated > ?', (since,))
        else:
            rows = db.query('SELECT run_hash FROM remote_streams WHERE run_hash=? AND closed=0 '
                            'AND updated > ? LIMIT 1', (run_hash, since))
    except Exception:   # a repository from before remote streams: none
        return set()
    return {r[0] for r in rows}
