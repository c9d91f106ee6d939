"""Columnar chunk codec: a series' points as four numpy arrays, each encoded on its own.

Every column blob starts with a one-byte tag saying how it is encoded:

- steps and times (int64; times are milliseconds): ``A`` + first + stride (8 bytes each)
  when the column is an arithmetic progression — the usual ``step += 1`` series costs 17
  bytes per chunk and decodes with ``arange`` —, else ``z`` + zlib of the deltas;
- values: ``4`` float32 bytes when every value is exactly a float32 (values that came
  from float32 tensors: half the size, decoded with ``frombuffer``); ``F``/``I`` raw
  float64/int64 (random floats hardly compress: raw values decode with a zero-copy
  ``frombuffer``); or ``f``/``i`` zlib of the raw bytes when that saves a quarter;
- epochs: ``N`` no epoch at all, ``d`` + zlib deltas, or ``m`` + mask length (4 bytes) +
  zlib bitmask of missing epochs + zlib deltas (missing ones mapped to -1).

Columns decode independently, so a chart that needs steps and values never touches the
epochs or the times.
"""
from __future__ import annotations

import zlib

import numpy as np

CHUNK_POINTS = 4096
NO_EPOCH = -(2 ** 63)
_LEVEL = 6
COLUMNS = ('steps', 'values', 'epochs', 'times')


def _pack_ints(a: np.ndarray) -> bytes:
    a = a.astype('<i8', copy=False)
    if len(a) >= 2:
        stride = int(a[1]) - int(a[0])
        if bool(np.all(np.diff(a) == stride)):
            return b'A' + int(a[0]).to_bytes(8, 'little', signed=True) + \
                stride.to_bytes(8, 'little', signed=True)
    d = np.empty_like(a)
    if len(a):
        d[0] = a[0]
        np.subtract(a[1:], a[:-1], out=d[1:])
    return b'z' + zlib.compress(d.tobytes(), _LEVEL)


def _unpack_ints(b: bytes, n: int) -> np.ndarray:
    if b[:1] == b'A':
        first = int.from_bytes(b[1:9], 'little', signed=True)
        stride = int.from_bytes(b[9:17], 'little', signed=True)
        return np.arange(n, dtype=np.int64) * stride + first
    d = np.frombuffer(zlib.decompress(b[1:]), dtype='<i8')
    return np.cumsum(d, dtype=np.int64)


def _pack_values(values: np.ndarray) -> bytes:
    is_int = values.dtype.kind in 'iub'
    if not is_int:
        as64 = values.astype('<f8', copy=False)
        with np.errstate(over='ignore', invalid='ignore'):  # too big for float32: not exact
            as32 = as64.astype('<f4')
        if np.array_equal(as32.astype('<f8'), as64, equal_nan=True):
            # values that came from float32 (most framework tensors): half the bytes, and
            # decoding stays a frombuffer
            return b'4' + as32.tobytes()
    raw = values.astype('<i8' if is_int else '<f8', copy=False).tobytes()
    if len(raw) > 4096:
        # try a sample first: most float series do not compress, and compressing a whole
        # chunk to find that out costs more than the rest of the flush
        sample = raw[:2048]
        if len(zlib.compress(sample, 1)) * 4 > len(sample) * 3:
            return (b'I' if is_int else b'F') + raw
    packed = zlib.compress(raw, 1)
    # zlib only where it saves a quarter: decompressing costs more than reading raw bytes
    if len(packed) * 4 <= len(raw) * 3:
        return (b'i' if is_int else b'f') + packed
    return (b'I' if is_int else b'F') + raw


def _unpack_values(b: bytes) -> np.ndarray:
    tag = b[:1]
    if tag == b'4':
        return np.frombuffer(b, dtype='<f4', offset=1).astype(np.float64)
    dtype = '<i8' if tag in (b'i', b'I') else '<f8'
    if tag in (b'I', b'F'):
        return np.frombuffer(b, dtype=dtype, offset=1)
    return np.frombuffer(zlib.decompress(b[1:]), dtype=dtype)


def _pack_epochs(epochs: np.ndarray) -> bytes:
    ep = epochs.astype(np.int64, copy=True)
    none = ep == NO_EPOCH
    if none.all():
        return b'N'
    if not none.any():
        return b'd' + _pack_ints(ep)
    ep[none] = -1
    mask = zlib.compress(np.packbits(none).tobytes(), _LEVEL)
    return b'm' + len(mask).to_bytes(4, 'little') + mask + _pack_ints(ep)


def _unpack_epochs(b: bytes, n: int) -> np.ndarray:
    kind = b[:1]
    if kind == b'N':
        return np.full(n, NO_EPOCH, dtype=np.int64)
    if kind == b'd':
        return _unpack_ints(b[1:], n)
    size = int.from_bytes(b[1:5], 'little')
    none = np.unpackbits(np.frombuffer(zlib.decompress(b[5:5 + size]), np.uint8))[:n]
    epochs = _unpack_ints(b[5 + size:], n).copy()
    epochs[none.astype(bool)] = NO_EPOCH
    return epochs


def encode(steps: np.ndarray, values: np.ndarray, epochs: np.ndarray, times: np.ndarray):
    """-> (steps_blob, values_blob, epochs_blob, times_blob)."""
    ms = np.rint(times * 1000.0).astype(np.int64)
    return _pack_ints(steps), _pack_values(values), _pack_epochs(epochs), _pack_ints(ms)


def decode_column(column: str, blob: bytes, n: int) -> np.ndarray:
    if column == 'steps':
        return _unpack_ints(blob, n)
    if column == 'values':
        return _unpack_values(blob)
    if column == 'epochs':
        return _unpack_epochs(blob, n)
    return _unpack_ints(blob, n).astype(np.float64) / 1000.0


def decode(steps_b: bytes, values_b: bytes, epochs_b: bytes, times_b: bytes, n: int):
    return tuple(decode_column(c, b, n) for c, b in zip(COLUMNS, (steps_b, values_b, epochs_b,
                                                                  times_b)))


def last_written_order(steps: np.ndarray):
    """None if ``steps`` are strictly increasing; else the indices that put the points in
    step order keeping, where a step repeats, the value written last."""
    if len(steps) < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return None
    rev = steps[::-1]
    _, idx = np.unique(rev, return_index=True)
    return len(steps) - 1 - idx


def sort_unique_last(steps, values, epochs, times):
    """Order points by step; where a step repeats, the last written value wins."""
    pick = last_written_order(steps)
    if pick is None:
        return steps, values, epochs, times
    return steps[pick], values[pick], epochs[pick], times[pick]


def concat_values(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=np.float64)
    if len(parts) == 1:
        return parts[0]
    if all(p.dtype.kind == 'i' for p in parts):
        return np.concatenate(parts)
    return np.concatenate([p.astype(np.float64) for p in parts])
