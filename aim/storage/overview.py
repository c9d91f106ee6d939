"""Chunk overviews: each chunk's extremes per fixed block of points, stored beside it.

A chart of a long series needs, per pixel column, the column's first, lowest, highest and
last point (M4, see ``aim/web/downsample.py``). Reading every point to find them costs a
thousand series times ten thousand points. An overview keeps those four points for every
block of ``B`` consecutive points of a chunk (block ``k`` = points ``[kB, kB + B)``), at
two block sizes (``LEVELS``). When a chart's buckets are whole blocks, the overview alone
answers exactly: a bucket's first point is its first block's first, its last point its
last block's last, and its extremes are among its blocks' extremes. A chart then reads
about a fifth of the points at the fine level, a seventieth at the coarse one.

Overviews are derived data, like the series summaries: written with each chunk in the
same transaction (block extremes only for series longer than one chunk, see ``wanted``),
deleted with it, rebuilt by ``aim storage reindex``; a reader that finds one missing,
stale or undecodable reads the chunk's points instead.

Row: ``overviews(series_id, seq, n, first_step, stride, last_time, points)``, one for
every chunk. ``stride`` is the step increment when the chunk's steps are an arithmetic
progression (else NULL: the points are unused, as positions cannot be turned into steps).
``last_time`` is the latest write time among the chunk's points: a live view asking for
points written after some time reads only the chunks written since. ``points`` (NULL for a
series that fits in its first chunk)::

    b'V' | value tag (b'4' float32, b'F' float64, b'I' int64) |
    for each level: uint32 count | uint16 positions[count] | values[count]

Positions are indices within the chunk (< 4096), ascending; repeats among a block's four
points are stored once. NaN never is a block's minimum or maximum unless the whole block
is NaN, but it is kept as a block's first or last point, so gaps stay visible.
"""
from __future__ import annotations

import struct

import numpy as np

from aim.storage.chunks import CHUNK_POINTS

LEVELS = (16, 256)
_VALUE_DTYPES = {b'4': '<f4', b'F': '<f8', b'I': '<i8'}


def arg_extremes(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """argmin and argmax along ``axis``; NaN never wins (unless all of them are NaN)."""
    if values.dtype.kind == 'f':
        nan = np.isnan(values)
        if nan.any():
            return (np.where(nan, np.inf, values).argmin(axis=axis),
                    np.where(nan, -np.inf, values).argmax(axis=axis))
    return values.argmin(axis=axis), values.argmax(axis=axis)


def block_m4(values: np.ndarray, block: int) -> np.ndarray:
    """Ascending indices of each ``block``-point block's first, min, max and last point,
    each index once; the last block may be shorter."""
    n = len(values)
    full = n // block
    parts = []
    if full:
        grid = values[:full * block].reshape(full, block)
        arg_min, arg_max = arg_extremes(grid, axis=1)
        local = np.empty((full, 4), dtype=np.int64)
        local[:, 0] = 0
        np.minimum(arg_min, arg_max, out=local[:, 1])
        np.maximum(arg_min, arg_max, out=local[:, 2])
        local[:, 3] = block - 1
        keep = np.empty(local.shape, dtype=bool)
        keep[:, 0] = True
        np.not_equal(local[:, 1:], local[:, :-1], out=keep[:, 1:])
        local += (np.arange(full) * block)[:, None]
        parts.append(local[keep])
    if n > full * block:
        start = full * block
        tail = values[start:]
        arg_min, arg_max = arg_extremes(tail, axis=0)
        picks = sorted({0, int(arg_min), int(arg_max), len(tail) - 1})
        parts.append(np.array(picks, dtype=np.int64) + start)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def encode(values: np.ndarray, value_tag: bytes) -> bytes:
    """The overview blob of a chunk's ``values``; ``value_tag`` is b'4', b'F' or b'I'."""
    dtype = _VALUE_DTYPES[value_tag]
    out = [b'V', value_tag]
    for level in LEVELS:
        picks = block_m4(values, level)
        out.append(struct.pack('<I', len(picks)))
        out.append(picks.astype('<u2').tobytes())
        out.append(values[picks].astype(dtype).tobytes())
    return b''.join(out)


def decode(blob: bytes, level: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, values) of one level of an overview blob; positions are uint16 and
    both arrays are read-only views of the blob."""
    if blob[:1] != b'V' or blob[1:2] not in _VALUE_DTYPES:
        raise ValueError(f'not an overview blob (starts with {blob[:2]!r})')
    dtype = np.dtype(_VALUE_DTYPES[blob[1:2]])
    offset = 2
    for lv in LEVELS:
        (count,) = struct.unpack_from('<I', blob, offset)
        offset += 4
        if lv == level:
            positions = np.frombuffer(blob, '<u2', count, offset)
            values = np.frombuffer(blob, dtype, count, offset + 2 * count)
            return positions, values
        offset += count * (2 + dtype.itemsize)
    raise ValueError(f'no overview level {level}; levels are {LEVELS}')


def value_tag(values_blob: bytes) -> bytes:
    """The overview value tag matching a chunk's encoded values column."""
    tag = values_blob[:1]
    if tag == b'4':
        return b'4'
    return b'I' if tag in (b'I', b'i') else b'F'


def stride_of(steps_blob: bytes, n: int) -> int | None:
    """The step increment of a chunk whose steps are arithmetic (``A`` encoding), else
    None."""
    if n < 2 or steps_blob[:1] != b'A':
        return None
    return int.from_bytes(steps_blob[9:17], 'little', signed=True)


def wanted(seq: int, n: int) -> bool:
    """Whether a chunk's overview row carries its block extremes: every chunk of a series
    longer than one chunk. A series that fits in its first chunk is short enough to be read
    whole (a chart of it never has many points a bucket), so its frequent rewrites while it
    grows skip that work."""
    return seq > 0 or n >= CHUNK_POINTS


COLUMNS = 'series_id, seq, n, first_step, stride, last_time, points'


def readable(db) -> bool:
    """Whether the repository database has this layout of the table (a repository written
    before it and opened read-only has not; a writable open creates it). A PostgreSQL
    repository has had it from the start."""
    if getattr(db, 'dialect', 'sqlite') != 'sqlite':
        return True
    return 'last_time' in {row[1] for row in db.query('PRAGMA table_info(overviews)')}
INSERT = f'INSERT OR REPLACE INTO overviews({COLUMNS}) VALUES(?, ?, ?, ?, ?, ?, ?)'


def row(series_id: int, seq: int, steps: np.ndarray, values: np.ndarray, times: np.ndarray,
        steps_blob: bytes, values_blob: bytes) -> tuple:
    """The ``overviews`` row of a chunk (see ``COLUMNS``), from its decoded and encoded
    columns; ``points`` is None for a chunk that ``wanted`` leaves out."""
    n = len(steps)
    points = encode(values, value_tag(values_blob)) if wanted(seq, n) else None
    return (series_id, seq, n, int(steps[0]), stride_of(steps_blob, n),
            float(np.max(times)), points)
