"""The wire format of a spool batch: what a client ships to ``aim server`` (or ``aim sync``
applies to a local repository).

A batch is one HTTP request body::

    b'AIMB' | u8 version | u32 header length | header (JSON, UTF-8) | column blocks

The header names the stream and run, the journal ranges the points come from, the series
they belong to, the operations (params, props, logs, close) and each column block's
length and encoding. Points travel as five columns in journal order:

    code    int32   local series id * 2 | is_int
    step    int64   delta-encoded (steps mostly grow by one: compresses to almost nothing)
    value   int64   the raw 8 bytes (an int, or a float's bits)
    epoch   int64
    time    int64   milliseconds since 1970, delta-encoded (storage keeps milliseconds)

Each block is zlib-compressed (level 1) unless that does not pay (random float bits), in
which case it travels raw. Decoding checks every length against the body and raises
:class:`BatchError` on anything inconsistent; nothing of a bad batch is applied.
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import Any

# the version of the whole remote protocol (routes and bodies), checked at GET /hello
PROTOCOL_VERSION = 1
MAGIC = b'AIMB'
VERSION = 1
MEDIA_TYPE = 'application/x-aim-batch'
_PREFIX = struct.Struct('<4sBI')
MAX_HEADER_BYTES = 64 << 20
# a batch never holds more than this many points (the sender splits bigger backlogs)
MAX_BATCH_POINTS = 1 << 20
COLUMNS = (('code', 'int32'), ('step', 'int64'), ('value', 'int64'), ('epoch', 'int64'),
           ('time', 'int64'))
_DELTA = ('step', 'time')


class BatchError(ValueError):
    """A batch body that is not a well-formed batch."""


def encode(header: dict[str, Any], records: tuple | None) -> bytes:
    """``records``: (code, step, ivalue, epoch, time) numpy arrays of equal length, or None."""
    import numpy as np
    blocks: list[bytes] = []
    info = []
    if records is not None and len(records[0]):
        code, step, ivalue, epoch, time = records
        cols: dict[str, Any] = {
            'code': np.ascontiguousarray(code, np.int32),
            'step': np.diff(np.asarray(step, np.int64), prepend=np.int64(0)),
            'value': np.ascontiguousarray(ivalue, np.int64),
            'epoch': np.ascontiguousarray(epoch, np.int64),
            'time': np.diff(np.rint(np.asarray(time, np.float64) * 1000.0).astype(np.int64),
                            prepend=np.int64(0)),
        }
        for name, _ in COLUMNS:
            raw = cols[name].tobytes()
            packed = _pack(raw)
            if packed is None:
                blocks.append(raw)
                info.append([name, 'raw', len(raw)])
            else:
                blocks.append(packed)
                info.append([name, 'zlib', len(packed)])
        header = {**header, 'n': int(len(code)), 'blocks': info}
    else:
        header = {**header, 'n': 0, 'blocks': []}
    head = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode()
    return b''.join([_PREFIX.pack(MAGIC, VERSION, len(head)), head, *blocks])


def _pack(raw: bytes) -> bytes | None:
    """zlib level 1, or None when the data does not compress (a sample decides, so that
    incompressible float bits cost no compression time)."""
    if len(raw) > 1 << 16:
        sample = raw[:1 << 16]
        if len(zlib.compress(sample, 1)) > 0.8 * len(sample):
            return None
    packed = zlib.compress(raw, 1)
    return packed if len(packed) < 0.9 * len(raw) else None


def decode(body: bytes, max_points: int = MAX_BATCH_POINTS) -> tuple[dict, tuple | None]:
    """The header and (code, step, ivalue, fvalue, epoch, time) arrays (None for none)."""
    import numpy as np
    if len(body) < _PREFIX.size:
        raise BatchError(f'a batch is at least {_PREFIX.size} bytes; got {len(body)}')
    magic, version, head_len = _PREFIX.unpack_from(body)
    if magic != MAGIC:
        raise BatchError('not a batch (bad magic bytes)')
    if version != VERSION:
        raise BatchError(f'batch format version {version}; this server reads {VERSION}. '
                         f'Use the same aimkit version on both sides.')
    if head_len > min(MAX_HEADER_BYTES, len(body) - _PREFIX.size):
        raise BatchError(f'header length {head_len} does not fit the body')
    try:
        header = json.loads(body[_PREFIX.size:_PREFIX.size + head_len])
    except (ValueError, RecursionError) as e:
        raise BatchError(f'the batch header is not JSON ({e})') from None
    if not isinstance(header, dict):
        raise BatchError('the batch header is not a JSON object')
    n = header.get('n')
    if type(n) is not int or not 0 <= n <= max_points:
        raise BatchError(f'point count {n!r} is not an integer in 0..{max_points}')
    pos = _PREFIX.size + head_len
    if not n:
        if pos != len(body):
            raise BatchError('trailing bytes after a batch without points')
        return header, None
    blocks = header.get('blocks')
    if not isinstance(blocks, list) or len(blocks) != len(COLUMNS):
        raise BatchError(f'a batch with points has {len(COLUMNS)} column blocks')
    cols = {}
    for (name, dtype), block in zip(COLUMNS, blocks):
        if (not isinstance(block, list) or len(block) != 3 or block[0] != name
                or block[1] not in ('raw', 'zlib') or type(block[2]) is not int
                or not 0 <= block[2] <= len(body) - pos):
            raise BatchError(f'bad description of column block {name!r}: {block!r:.80}')
        data = body[pos:pos + block[2]]
        pos += block[2]
        width = np.dtype(dtype).itemsize
        if block[1] == 'zlib':
            try:
                d = zlib.decompressobj()
                data = d.decompress(data, n * width + 1)
            except zlib.error as e:
                raise BatchError(f'column {name!r} does not decompress ({e})') from None
        if len(data) != n * width:
            raise BatchError(f'column {name!r} holds {len(data)} bytes, {n * width} expected')
        cols[name] = np.frombuffer(data, dtype).copy()
    if pos != len(body):
        raise BatchError(f'{len(body) - pos} trailing bytes after the column blocks')
    step = np.cumsum(cols['step'])
    time = np.cumsum(cols['time']).astype(np.float64) / 1000.0
    ivalue = cols['value']
    return header, (cols['code'], step, ivalue, ivalue.view(np.float64), cols['epoch'], time)


# -- JSON documents with binary blobs (series chunks, run exports) ---------------------------
_PACK_PREFIX = struct.Struct('<4sI')
PACK_MAGIC = b'AIMP'
PACK_MEDIA_TYPE = 'application/x-aim-pack'


def pack(doc: Any) -> bytes:
    """``doc`` (JSON values and ``bytes``) as one body: bytes travel raw after the JSON,
    which names them ``{"$b": [offset, length]}``."""
    blobs: list[bytes] = []
    offset = 0

    def walk(x):
        nonlocal offset
        if isinstance(x, (bytes, bytearray, memoryview)):
            b = bytes(x)
            blobs.append(b)
            ref = {'$b': [offset, len(b)]}
            offset += len(b)
            return ref
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        return x
    head = json.dumps(walk(doc), separators=(',', ':'), ensure_ascii=False,
                      allow_nan=True).encode()
    return b''.join([_PACK_PREFIX.pack(PACK_MAGIC, len(head)), head, *blobs])


def unpack(body: bytes) -> Any:
    if len(body) < _PACK_PREFIX.size:
        raise BatchError('not a packed document (too short)')
    magic, head_len = _PACK_PREFIX.unpack_from(body)
    if magic != PACK_MAGIC or head_len > len(body) - _PACK_PREFIX.size:
        raise BatchError('not a packed document')
    base = _PACK_PREFIX.size + head_len
    try:
        doc = json.loads(body[_PACK_PREFIX.size:base])
    except (ValueError, RecursionError) as e:
        raise BatchError(f'bad packed document header ({e})') from None

    def walk(x):
        if isinstance(x, dict):
            ref = x.get('$b')
            if len(x) == 1 and isinstance(ref, list) and len(ref) == 2:
                start, length = ref
                if not (type(start) is int and type(length) is int and start >= 0
                        and length >= 0 and base + start + length <= len(body)):
                    raise BatchError('a blob reference points outside the body')
                return body[base + start:base + start + length]
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x
    return walk(doc)
