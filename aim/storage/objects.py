"""Rich objects (images, texts, distributions, audio, figures) in the repository.

Three parts, as for metrics:

- **The object journal** (``journal/<hash>/objects.<n>.oj``): ``track(Image(...))`` appends
  one record per call with one ``os.writev`` (the object's raw data, copied, never
  encoded on the caller's thread). Once the call returns the record is in the kernel's page
  cache, so a SIGKILL a moment later loses nothing; a record cut short by a kill during
  the write was never acknowledged and is ignored (records carry their length).
- **Folding** (the flusher thread, or recovery): each record is encoded (PNG, histogram,
  figure JSON: ``aim.sdk.objects.encode``), its blobs stored content-addressed
  (aim/storage/blobs.py), and its metadata appended to the series' open chunk, all in the
  flush's transaction.
- **Tables**: ``object_series`` (one row per run, name and context: the kind and a
  summary), ``object_chunks`` (up to 256 steps per row: zlib-compressed JSON columns of
  steps, epochs, times and the objects' metadata) and ``object_blobs`` (which series
  refers to which blob, so that deleting runs can drop the blobs nobody else uses).

A value at a step replaces what that step held (the whole list of objects), as for
metrics. A series has one kind: a name and context tracked as images cannot take a text
or a number.
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable, Iterable
from typing import Any

KINDS = ('image', 'text', 'distribution', 'audio', 'figure')
# Aim's sequence names, the query variables of repo.query_images() & co.
SEQUENCE_NAMES = {'image': 'images', 'text': 'texts', 'distribution': 'distributions',
                  'audio': 'audios', 'figure': 'figures'}
KIND_OF_SEQUENCE = {v: k for k, v in SEQUENCE_NAMES.items()}
AIM_NAMES = {k: f'aim.{k}' for k in KINDS}
CHUNK_POINTS = 256

OBJECT_SUFFIX = '.oj'
OBJECT_PREFIX = 'objects.'
ROLL_BYTES = 64 << 20
MAGIC = b'AOJ1'
# magic, record length (all of it), step, epoch, time, number of objects, key length
_HEAD = struct.Struct('<4sQqqdII')
_ITEM = struct.Struct('<II')        # meta length, payload length
NO_EPOCH = -(2 ** 63)

SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS object_series(
        id INTEGER PRIMARY KEY, run_hash TEXT NOT NULL, name TEXT NOT NULL,
        context TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
        first_step INTEGER, last_step INTEGER, last REAL, min REAL, max REAL,
        last_time REAL, UNIQUE(run_hash, name, context))""",
    """CREATE TABLE IF NOT EXISTS object_chunks(
        series_id INTEGER NOT NULL, seq INTEGER NOT NULL, first_step INTEGER,
        last_step INTEGER, n INTEGER, data BLOB, PRIMARY KEY(series_id, seq))""",
    """CREATE TABLE IF NOT EXISTS object_blobs(
        series_id INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(series_id, digest))""",
    'CREATE INDEX IF NOT EXISTS object_blobs_by_digest ON object_blobs(digest)',
)
PG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS object_series(
        id BIGSERIAL PRIMARY KEY, run_hash TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL, context TEXT COLLATE "C" NOT NULL,
        kind TEXT NOT NULL, count BIGINT NOT NULL DEFAULT 0, first_step BIGINT,
        last_step BIGINT, last DOUBLE PRECISION, min DOUBLE PRECISION,
        max DOUBLE PRECISION, last_time DOUBLE PRECISION, UNIQUE(run_hash, name, context))""",
    """CREATE TABLE IF NOT EXISTS object_chunks(
        series_id BIGINT NOT NULL, seq BIGINT NOT NULL, first_step BIGINT,
        last_step BIGINT, n BIGINT, data BYTEA, PRIMARY KEY(series_id, seq))""",
    """CREATE TABLE IF NOT EXISTS object_blobs(
        series_id BIGINT NOT NULL, digest TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY(series_id, digest))""",
    'CREATE INDEX IF NOT EXISTS object_blobs_by_digest ON object_blobs(digest)',
)
TABLES = ('object_series', 'object_chunks', 'object_blobs')
SCHEMA_NAMES = frozenset(TABLES) | {'object_blobs_by_digest'}
SERIES_FIELDS = ('id', 'run_hash', 'name', 'context', 'kind', 'count', 'first_step',
                 'last_step', 'last_time')


# -- the journal ----------------------------------------------------------------------------
def journal_files(jdir: str) -> list[str]:
    """The object journal files of a run's journal folder, in write order."""
    try:
        names = os.listdir(jdir)
    except OSError:
        return []
    numbered = []
    for name in names:
        if name.startswith(OBJECT_PREFIX) and name.endswith(OBJECT_SUFFIX):
            number = name[len(OBJECT_PREFIX):-len(OBJECT_SUFFIX)]
            if number.isdigit():
                numbered.append((int(number), name))
    return [os.path.join(jdir, name) for _, name in sorted(numbered)]


def is_journal_name(name: str) -> bool:
    return name.startswith(OBJECT_PREFIX) and name.endswith(OBJECT_SUFFIX) and \
        name[len(OBJECT_PREFIX):-len(OBJECT_SUFFIX)].isdigit()


def series_key(kind: str, name: str, context: str) -> bytes:
    return json.dumps([kind, name, context], ensure_ascii=False).encode()


LIST_FLAG = 1 << 31     # in the object count: the objects were tracked as a list


def pack_record(key: bytes, step: int, epoch: int, time: float,
                items: list[tuple[bytes, Any]], is_list: bool = False) -> tuple[list, int]:
    """The buffers of one record (for ``os.writev``: header, series key, then per object
    its metadata JSON and payload) and their total size."""
    parts: list = [b'', key]
    total = _HEAD.size + len(key)
    for meta, payload in items:
        size = len(payload) if type(payload) is bytes else memoryview(payload).nbytes
        parts += (_ITEM.pack(len(meta), size), meta, payload)
        total += _ITEM.size + len(meta) + size
    parts[0] = _HEAD.pack(MAGIC, total, step, epoch, time,
                          len(items) | (LIST_FLAG if is_list else 0), len(key))
    return parts, total


class Record:
    __slots__ = ('kind', 'name', 'context', 'step', 'epoch', 'time', 'items', 'end',
                 'is_list')

    def __init__(self, kind, name, context, step, epoch, time, items, end=0, is_list=False):
        self.kind, self.name, self.context = kind, name, context
        self.step, self.epoch, self.time, self.items = step, epoch, time, items
        self.end = end      # the byte offset after the record in its journal file
        self.is_list = is_list

    def __repr__(self) -> str:
        return (f'Record({self.kind} {self.name!r} {self.context} step={self.step} '
                f'n={len(self.items)})')


FILE_MAGIC = b'AOJF0001'
# file header: magic, capacity (bytes of the whole file), committed (the offset after the
# last acknowledged record), reserved
_FILE_HEAD = struct.Struct('<8sqqq')
FILE_HEADER = _FILE_HEAD.size
FIRST_CAPACITY = 1 << 20


def parse_records(raw, base: int) -> tuple[list[Record], int, str | None]:
    """Records from ``raw`` (the bytes of a journal file from offset ``base``): (records,
    the offset after the last whole one, a problem or None)."""
    out: list[Record] = []
    pos = 0
    view = memoryview(raw)
    size = len(raw)
    while pos + _HEAD.size <= size:
        magic, total, step, epoch, time, n, klen = _HEAD.unpack_from(raw, pos)
        if magic != MAGIC or total < _HEAD.size + klen:
            return out, base + pos, f'unreadable record at byte {base + pos}'
        if pos + total > size:
            return out, base + pos, f'a record at byte {base + pos} runs past the end'
        try:
            kind, name, context = json.loads(bytes(view[pos + _HEAD.size:
                                                        pos + _HEAD.size + klen]))
            p = pos + _HEAD.size + klen
            items = []
            is_list = bool(n & LIST_FLAG)
            for _ in range(n & ~LIST_FLAG):
                mlen, plen = _ITEM.unpack_from(raw, p)
                p += _ITEM.size
                meta = json.loads(bytes(view[p:p + mlen]))
                p += mlen
                items.append((meta, bytes(view[p:p + plen])))
                p += plen
            if p != pos + total or not isinstance(kind, str) or not isinstance(name, str) \
                    or not isinstance(context, str):
                raise ValueError('record layout')
        except (ValueError, TypeError, struct.error):
            return out, base + pos, f'unreadable record at byte {base + pos}'
        pos += total
        out.append(Record(kind, name, context, step, None if epoch == NO_EPOCH else epoch,
                          time, items, base + pos, is_list))
    if pos != size:
        return out, base + pos, f'a record at byte {base + pos} runs past the end'
    return out, base + pos, None


def read_records(path: str) -> tuple[list[Record], int, str | None]:
    """The acknowledged records of one journal file, read without trusting it: (records,
    the offset after the last whole one, a problem or None). Bytes past the committed
    offset belong to a write that never returned: ignored."""
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as e:
        return [], 0, f'{name} cannot be read ({e.strerror})'
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, FILE_HEADER, 0)
        if len(head) < FILE_HEADER:
            return [], 0, None if not head.strip(b'\0') else f'{name}: its header is cut short'
        magic, capacity, committed, _ = _FILE_HEAD.unpack(head)
        if magic != FILE_MAGIC:
            # created, not yet stamped (a kill during creation): nothing was acknowledged
            return [], 0, None if not head.strip(b'\0') else f'{name}: not an object journal'
        if not FILE_HEADER <= committed <= size:
            return [], 0, f'{name}: its committed offset {committed} is outside the file'
        raw = b''
        want = committed - FILE_HEADER
        while len(raw) < want:
            part = os.pread(fd, min(want - len(raw), 1 << 26), FILE_HEADER + len(raw))
            if not part:
                break
            raw += part
    finally:
        os.close(fd)
    records, end, problem = parse_records(raw, FILE_HEADER)
    return records, end, f'{name}: {problem}' if problem else None


class _File:
    __slots__ = ('path', 'mm', 'capacity', 'pos', 'folded', 'full')

    def __init__(self, path: str, capacity: int):
        import mmap
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            # reserve the blocks now: a full disk fails here with ENOSPC, not later with
            # SIGBUS on a store into the mapping
            os.posix_fallocate(fd, 0, capacity)
            self.mm = mmap.mmap(fd, capacity)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        os.close(fd)
        _FILE_HEAD.pack_into(self.mm, 0, FILE_MAGIC, capacity, FILE_HEADER, 0)
        self.path, self.capacity = path, capacity
        self.pos = self.folded = FILE_HEADER
        self.full = False


_COMMITTED_AT = 16


class ObjectJournal:
    """The writer's side: records go into memory-mapped, preallocated files (no system
    call per record); the flusher reads them back from the mapping."""

    def __init__(self, jdir: str, max_capacity: int = ROLL_BYTES):
        self.jdir = jdir
        self.files: list[_File] = []
        self._capacity = FIRST_CAPACITY
        self._max_capacity = max_capacity
        self._next = max((int(os.path.basename(p)[len(OBJECT_PREFIX):-len(OBJECT_SUFFIX)])
                          for p in journal_files(jdir)), default=-1) + 1

    def _open(self, need: int) -> _File:
        if self.files:
            self.files[-1].full = True
        capacity = max(self._capacity, FILE_HEADER + need)
        self._capacity = min(self._capacity * 2, self._max_capacity)
        path = os.path.join(self.jdir, f'{OBJECT_PREFIX}{self._next:08d}{OBJECT_SUFFIX}')
        self._next += 1
        f = _File(path, capacity)
        self.files.append(f)
        return f

    def append(self, parts: list, size: int) -> None:
        """Called under the writer's lock: the record is acknowledged when this returns."""
        files = self.files
        f = files[-1] if files and not files[-1].full else None
        if f is None or f.pos + size > f.capacity:
            f = self._open(size)
        mm, p = f.mm, f.pos
        for part in parts:
            n = len(part) if type(part) is bytes else memoryview(part).nbytes
            mm[p:p + n] = part
            p += n
        f.pos = p
        _COMMIT.pack_into(mm, _COMMITTED_AT, p)

    def pending(self) -> list[tuple[_File, int]]:
        """(file, committed offset) of each file with unfolded records (under the lock)."""
        return [(f, f.pos) for f in self.files if f.pos > f.folded]

    def read(self, f: _File, stop: int) -> list[Record]:
        records, _, problem = parse_records(f.mm[f.folded:stop], f.folded)
        return records

    def mark_folded(self, marks: list[tuple[_File, int]]) -> None:
        for f, stop in marks:
            f.folded = max(f.folded, stop)

    def drop_done(self) -> None:
        """Under the lock: delete the full files whose every record is folded (or shipped),
        and start the current one again from the top once all of it is."""
        keep = []
        for f in self.files:
            if f.folded >= f.pos and f.full:
                f.mm.close()
                try:
                    os.unlink(f.path)
                except OSError:
                    pass
                continue
            if f.folded >= f.pos and f.pos > FILE_HEADER:
                f.pos = f.folded = FILE_HEADER
                _COMMIT.pack_into(f.mm, _COMMITTED_AT, FILE_HEADER)
            keep.append(f)
        self.files = keep

    def unfolded(self) -> int:
        return sum(f.pos - f.folded for f in self.files)

    def close(self) -> None:
        for f in self.files:
            f.mm.close()
        self.files = []


_COMMIT = struct.Struct('<q')


# -- encoding (off the caller's thread) -----------------------------------------------------------
def encode_record(rec: Record, put_blob: Callable[[bytes], str], warn=None) -> list[dict] | None:
    """The stored metadata of a record's objects, their blobs stored through ``put_blob``;
    None when the objects cannot be encoded (the record is dropped, with a warning)."""
    from aim.sdk.objects import encode
    out = []
    try:
        for meta, payload in rec.items:
            stored, blob = encode(rec.kind, meta, payload)
            stored = dict(stored)
            # stored as JSON in the chunk: what JSON cannot hold (NaN, other types) would
            # make every later fold of the run fail
            json.dumps(stored, allow_nan=False)
            if blob is not None:
                stored['blob'] = put_blob(blob)
                stored['size'] = len(blob)
            out.append(stored)
    except Exception as e:   # one bad object never stops the flusher
        if warn is not None:
            warn(f'aim: an object of {rec.kind} series {rec.name!r} at step {rec.step} could '
                 f'not be encoded and was dropped ({type(e).__name__}: {e})')
        return None
    return out


# -- chunks --------------------------------------------------------------------------------------
def encode_chunk(steps, epochs, times, items) -> bytes:
    doc = {'s': steps, 'e': epochs, 't': times, 'v': items}
    return zlib.compress(json.dumps(doc, ensure_ascii=False, separators=(',', ':'),
                                    allow_nan=False).encode(), 1)


def decode_chunk(data) -> tuple[list, list, list, list]:
    doc = json.loads(zlib.decompress(bytes(data)))
    return doc['s'], doc['e'], doc['t'], doc['v']


class _ObjSeries:
    __slots__ = ('db_id', 'kind', 'name', 'context', 'seq', 'tail', 'count', 'first_step',
                 'last_step', 'last_time')

    def __init__(self, kind, name, context):
        self.db_id: int | None = None
        self.kind, self.name, self.context = kind, name, context
        self.seq = 0
        self.tail: dict | None = None    # step -> (epoch, time, items) of the open chunk
        self.count = 0
        self.first_step: int | None = None
        self.last_step: int | None = None
        self.last_time: float | None = None


class ObjectFolder:
    """Appends encoded points to their series' chunks (flusher, recovery and ingest)."""

    def __init__(self, db, run_hash: str):
        self.db = db
        self.run_hash = run_hash
        self.series: dict[tuple[str, str], _ObjSeries] = {}

    def _get(self, conn, kind: str, name: str, context: str) -> _ObjSeries:
        s = self.series.get((name, context))
        if s is not None:
            return s
        s = _ObjSeries(kind, name, context)
        row = conn.execute('SELECT id, kind, count, first_step, last_step, last_time FROM '
                           'object_series WHERE run_hash=? AND name=? AND context=?',
                           (self.run_hash, name, context)).fetchone()
        if row is None:
            conn.execute('INSERT OR IGNORE INTO object_series(run_hash, name, context, kind) '
                         'VALUES(?, ?, ?, ?)', (self.run_hash, name, context, kind))
            row = conn.execute('SELECT id, kind, count, first_step, last_step, last_time FROM '
                               'object_series WHERE run_hash=? AND name=? AND context=?',
                               (self.run_hash, name, context)).fetchone()
        s.db_id, s.kind, s.count, s.first_step, s.last_step, s.last_time = row
        last = conn.execute('SELECT seq, n, data FROM object_chunks WHERE series_id=? '
                            'ORDER BY seq DESC LIMIT 1', (s.db_id,)).fetchone()
        if last is not None:
            s.seq = last[0]
            if last[1] < CHUNK_POINTS:
                st, ep, ti, it = decode_chunk(last[2])
                s.tail = {a: (b, c, d) for a, b, c, d in zip(st, ep, ti, it)}
            else:
                s.seq += 1
        self.series[(name, context)] = s
        return s

    def fold(self, conn, points: Iterable[tuple[Record, list[dict]]]) -> None:
        """Fold (record, stored items) pairs, in track order."""
        by_series: dict[tuple[str, str], list] = {}
        for rec, items in points:
            value = items if rec.is_list else items[0]
            by_series.setdefault((rec.name, rec.context), []).append((rec, value))
        for (name, context), recs in by_series.items():
            s = self._get(conn, recs[0][0].kind, name, context)
            if s.kind != recs[0][0].kind:
                continue     # the writer refuses this; a hand-made journal may not
            self._append(conn, s, recs)

    def _append(self, conn, s: _ObjSeries, recs: list) -> None:
        in_order = all(s.last_step is None or rec.step > s.last_step for rec, _ in recs[:1])
        steps = [rec.step for rec, _ in recs]
        in_order = in_order and all(b > a for a, b in zip(steps, steps[1:]))
        digests = {d for _, items in recs for d in _digests(items)}
        if in_order:
            tail = s.tail or {}
            for rec, items in recs:
                tail[rec.step] = (rec.epoch, rec.time, items)
                if len(tail) == CHUNK_POINTS:
                    self._write(conn, s, tail)
                    s.seq += 1
                    tail = {}
            if tail:
                self._write(conn, s, tail)
            s.tail = tail or None
            s.count += len(recs)
            if s.first_step is None:
                s.first_step = recs[0][0].step
            s.last_step = recs[-1][0].step
            s.last_time = max(rec.time for rec, _ in recs)
        else:
            points: dict = {}
            for (data,) in conn.execute('SELECT data FROM object_chunks WHERE series_id=? '
                                        'ORDER BY seq', (s.db_id,)).fetchall():
                st, ep, ti, it = decode_chunk(data)
                points.update((a, (b, c, d)) for a, b, c, d in zip(st, ep, ti, it))
            for rec, items in recs:
                points[rec.step] = (rec.epoch, rec.time, items)
            conn.execute('DELETE FROM object_chunks WHERE series_id=?', (s.db_id,))
            ordered = sorted(points)
            s.seq, s.tail = 0, None
            for i in range(0, len(ordered), CHUNK_POINTS):
                part = {k: points[k] for k in ordered[i:i + CHUNK_POINTS]}
                self._write(conn, s, part)
                if len(part) == CHUNK_POINTS:
                    s.seq += 1
                else:
                    s.tail = part
            s.count = len(ordered)
            s.first_step, s.last_step = ordered[0], ordered[-1]
            s.last_time = max(v[1] for v in points.values())
        for digest in digests:
            conn.execute('INSERT OR IGNORE INTO object_blobs(series_id, digest) VALUES(?, ?)',
                         (s.db_id, digest))
        conn.execute('UPDATE object_series SET count=?, first_step=?, last_step=?, '
                     'last_time=? WHERE id=?',
                     (s.count, s.first_step, s.last_step, s.last_time, s.db_id))

    @staticmethod
    def _write(conn, s: _ObjSeries, part: dict) -> None:
        steps = sorted(part)
        data = encode_chunk(steps, [part[k][0] for k in steps], [part[k][1] for k in steps],
                            [part[k][2] for k in steps])
        conn.execute('INSERT OR REPLACE INTO object_chunks VALUES(?, ?, ?, ?, ?, ?)',
                     (s.db_id, s.seq, steps[0], steps[-1], len(steps), data))


def _digests(value) -> list[str]:
    """The blob digests of one point's value (an object's metadata, or a list of them)."""
    items = value if isinstance(value, list) else [value]
    return [m['blob'] for m in items if isinstance(m, dict) and isinstance(m.get('blob'), str)]


class ObjectSink:
    """Where a writer's object records go in a repository (the live writer's flusher and
    crash recovery): :meth:`prepare` encodes them outside the transaction, :meth:`fold`
    stores blobs and metadata inside it."""

    def __init__(self, store, run_hash: str):
        self.store = store
        self.run_hash = run_hash
        self.folder = ObjectFolder(store.db, run_hash)
        self._warned: set[str] = set()

    def existing(self) -> dict[tuple[str, str], tuple[str, int | None]]:
        return {(r['name'], r['context']): (r['kind'], r['last_step'])
                for r in list_series(self.store.db, self.run_hash)}

    def _warn(self, message: str) -> None:
        import warnings
        key = message.split(' at step ')[0]
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=2)

    def prepare(self, records: list[Record]) -> list:
        from aim.storage.blobs import DatabaseBlobs, _check, digest_of
        in_db = isinstance(self.store.blobs, DatabaseBlobs)
        blobs: dict[str, bytes] = {}

        def put(data: bytes) -> str:
            data = _check(data)
            digest = digest_of(data)
            if in_db:
                blobs[digest] = data
            else:
                self.store.blobs.put(data)     # an object store: before the commit
            return digest
        pairs = []
        for rec in records:
            items = encode_record(rec, put, self._warn)
            if items is not None:
                pairs.append((rec, items))
        return [pairs, blobs]

    def fold(self, conn, prepared) -> list:
        pairs, blobs = prepared
        for digest, data in blobs.items():
            conn.execute('INSERT OR IGNORE INTO blobs VALUES(?, ?, ?)', (digest, len(data),
                                                                         data))
        self.folder.fold(conn, pairs)
        return [True] if pairs else []

    def reload(self) -> None:
        self.folder = ObjectFolder(self.store.db, self.run_hash)


# -- reading -------------------------------------------------------------------------------------
def list_series(db, run_hash: str | None = None, kind: str | None = None,
                run_hashes: list[str] | None = None) -> list[dict]:
    """Object series rows (dicts of SERIES_FIELDS), by run, name and context."""
    where, args = [], []
    if run_hash is not None:
        where.append('run_hash=?')
        args.append(run_hash)
    if run_hashes is not None:
        where.append('run_hash IN (SELECT value FROM json_each(?))')
        args.append(json.dumps(list(run_hashes)))
    if kind is not None:
        where.append('kind=?')
        args.append(kind)
    sql = f'SELECT {", ".join(SERIES_FIELDS)} FROM object_series'
    if where:
        sql += ' WHERE ' + ' AND '.join(where)
    sql += ' ORDER BY run_hash, name, context'
    try:
        rows = db.query(sql, tuple(args))
    except Exception as e:
        if _missing_table(e):
            return []
        raise
    return [dict(zip(SERIES_FIELDS, r)) for r in rows]


def read_points(db, series_id: int, first_step: int | None = None,
                last_step: int | None = None, *, as_tracked: bool = False
                ) -> list[tuple[int, Any, float, Any]]:
    """The points of one object series in step order: (step, epoch, time, [metadata])
    (``as_tracked``: a single object's metadata rather than a list of one, when it was
    tracked alone)."""
    sql = 'SELECT data FROM object_chunks WHERE series_id=?'
    args: list = [series_id]
    if first_step is not None:
        sql += ' AND last_step >= ?'
        args.append(int(first_step))
    if last_step is not None:
        sql += ' AND first_step <= ?'
        args.append(int(last_step))
    sql += ' ORDER BY seq'
    out = []
    for (data,) in db.query(sql, tuple(args)):
        st, ep, ti, it = decode_chunk(data)
        for point in zip(st, ep, ti, it):
            if (first_step is None or point[0] >= first_step) and \
                    (last_step is None or point[0] <= last_step):
                if not as_tracked and not isinstance(point[3], list):
                    point = (point[0], point[1], point[2], [point[3]])
                out.append(point)
    out.sort(key=lambda p: p[0])
    return out


def _missing_table(e: Exception) -> bool:
    text = str(e).lower()
    return 'no such table' in text or ('object_' in text and 'does not exist' in text)


# -- maintenance ---------------------------------------------------------------------------------
def delete_runs(conn, run_hashes: list[str]) -> set[str]:
    """Delete the object rows of runs inside ``conn``; returns the digests they used."""
    digests: set[str] = set()
    for run_hash in run_hashes:
        ids = [r[0] for r in conn.execute('SELECT id FROM object_series WHERE run_hash=?',
                                          (run_hash,)).fetchall()]
        for sid in ids:
            digests.update(r[0] for r in conn.execute(
                'SELECT digest FROM object_blobs WHERE series_id=?', (sid,)).fetchall())
            conn.execute('DELETE FROM object_blobs WHERE series_id=?', (sid,))
            conn.execute('DELETE FROM object_chunks WHERE series_id=?', (sid,))
        conn.execute('DELETE FROM object_series WHERE run_hash=?', (run_hash,))
    return digests


def unreferenced(conn, digests: Iterable[str]) -> list[str]:
    """Those of ``digests`` that no object refers to any more."""
    return [d for d in digests if conn.execute(
        'SELECT 1 FROM object_blobs WHERE digest=? LIMIT 1', (d,)).fetchone() is None]


def referenced_digests(db) -> set[str]:
    try:
        return {r[0] for r in db.query('SELECT DISTINCT digest FROM object_blobs')}
    except Exception as e:
        if _missing_table(e):
            return set()
        raise


def copy_run(src_db, dst_conn, run_hash: str, new_hash: str | None = None) -> list[str]:
    """Copy a run's object rows from ``src_db`` into the transaction ``dst_conn``; returns
    the digests its objects use (the caller copies the blobs)."""
    new_hash = new_hash or run_hash
    digests: list[str] = []
    for row in list_series(src_db, run_hash):
        dst_conn.execute('DELETE FROM object_chunks WHERE series_id IN (SELECT id FROM '
                         'object_series WHERE run_hash=? AND name=? AND context=?)',
                         (new_hash, row['name'], row['context']))
        dst_conn.execute('DELETE FROM object_series WHERE run_hash=? AND name=? AND context=?',
                         (new_hash, row['name'], row['context']))
        dst_conn.execute('INSERT INTO object_series(run_hash, name, context, kind, count, '
                         'first_step, last_step, last_time) VALUES(?, ?, ?, ?, ?, ?, ?, ?)',
                         (new_hash, row['name'], row['context'], row['kind'], row['count'],
                          row['first_step'], row['last_step'], row['last_time']))
        new_id = dst_conn.execute('SELECT id FROM object_series WHERE run_hash=? AND name=? '
                                  'AND context=?',
                                  (new_hash, row['name'], row['context'])).fetchone()[0]
        for seq, first, last, n, data in src_db.query(
                'SELECT seq, first_step, last_step, n, data FROM object_chunks WHERE '
                'series_id=? ORDER BY seq', (row['id'],)):
            dst_conn.execute('INSERT INTO object_chunks VALUES(?, ?, ?, ?, ?, ?)',
                             (new_id, seq, first, last, n, bytes(data)))
        for (digest,) in src_db.query('SELECT digest FROM object_blobs WHERE series_id=?',
                                      (row['id'],)):
            dst_conn.execute('INSERT OR IGNORE INTO object_blobs VALUES(?, ?)', (new_id, digest))
            digests.append(digest)
    return digests


def rebuild_summaries(conn) -> list[tuple[str, str]]:
    """Recompute every object series' summary (count, first and last step, last time)
    from its chunks inside ``conn`` (``aim storage reindex``). Returns (run hash, problem)
    for series whose chunks cannot be decoded; those keep their summaries."""
    damaged = []
    rows = conn.execute('SELECT id, run_hash, name, context FROM object_series').fetchall()
    for sid, run_hash, name, context in rows:
        steps: list = []
        last_time = None
        try:
            for (data,) in conn.execute('SELECT data FROM object_chunks WHERE series_id=?',
                                        (sid,)).fetchall():
                st, _, ti, _ = decode_chunk(data)
                steps += st
                if ti:
                    last_time = max(ti) if last_time is None else max(last_time, max(ti))
        except (ValueError, zlib.error, KeyError, TypeError) as e:
            damaged.append((run_hash, f'object series {name!r} {context}: a chunk cannot be '
                                      f'decoded ({e})'))
            continue
        conn.execute('UPDATE object_series SET count=?, first_step=?, last_step=?, '
                     'last_time=? WHERE id=?',
                     (len(set(steps)), min(steps) if steps else None,
                      max(steps) if steps else None, last_time, sid))
    return damaged


def check_run(db, run_hash: str, blob_exists: Callable[[str], bool] | None = None) -> list[str]:
    """Problems of one run's objects: undecodable chunks, counts that disagree, blobs that
    are missing."""
    problems = []
    for row in list_series(db, run_hash):
        n = 0
        try:
            for (data,) in db.query('SELECT data FROM object_chunks WHERE series_id=?',
                                    (row['id'],)):
                st, _, _, items = decode_chunk(data)
                n += len(st)
                if blob_exists is not None:
                    for point in items:
                        for digest in _digests(point):
                            if not blob_exists(digest):
                                problems.append(f'{row["kind"]} series {row["name"]!r} '
                                                f'{row["context"]}: blob {digest} is missing')
        except (ValueError, zlib.error, KeyError, TypeError) as e:
            problems.append(f'{row["kind"]} series {row["name"]!r} {row["context"]}: a chunk '
                            f'cannot be decoded ({e})')
            continue
        if n != row['count']:
            problems.append(f'{row["kind"]} series {row["name"]!r} {row["context"]}: '
                            f'{n} points stored, the summary says {row["count"]}')
    return problems
