"""Columnar chunk codec: a series' points as four compressed numpy arrays.

Steps, epochs and times are delta-coded before zlib, so the usual "step += 1" series
and millisecond timestamps cost almost nothing; values are stored raw (float64/int64).
"""
from __future__ import annotations

import zlib

import numpy as np

CHUNK_POINTS = 4096
NO_EPOCH = -(2 ** 63)
_LEVEL = 6


def _pack_deltas(a: np.ndarray) -> bytes:
    d = np.empty_like(a)
    if len(a):
        d[0] = a[0]
        np.subtract(a[1:], a[:-1], out=d[1:])
    return zlib.compress(d.astype('<i8', copy=False).tobytes(), _LEVEL)


def _unpack_deltas(b: bytes) -> np.ndarray:
    d = np.frombuffer(zlib.decompress(b), dtype='<i8')
    return np.cumsum(d, dtype=np.int64)


def encode(steps: np.ndarray, values: np.ndarray, epochs: np.ndarray, times: np.ndarray):
    """-> (steps_blob, values_blob, epochs_blob, times_blob). Values dtype tag in 1st byte."""
    tag = b'i' if values.dtype.kind in 'iub' else b'f'
    vals = values.astype('<i8' if tag == b'i' else '<f8', copy=False)
    # epochs: b'N' = no epoch at all (the usual case); b'd' + deltas; or b'm' + mask length
    # (4 bytes) + mask of missing epochs + deltas, with missing ones mapped to -1
    ep = epochs.astype(np.int64, copy=True)
    none = ep == NO_EPOCH
    if none.all():
        ep_blob = b'N'
    elif not none.any():
        ep_blob = b'd' + _pack_deltas(ep)
    else:
        ep[none] = -1
        mask = zlib.compress(np.packbits(none).tobytes(), _LEVEL)
        ep_blob = b'm' + len(mask).to_bytes(4, 'little') + mask + _pack_deltas(ep)
    ms = np.rint(times * 1000.0).astype(np.int64)
    return (_pack_deltas(steps.astype(np.int64, copy=False)),
            tag + zlib.compress(vals.tobytes(), 1),
            ep_blob,
            _pack_deltas(ms))


def decode(steps_b: bytes, values_b: bytes, epochs_b: bytes, times_b: bytes, n: int):
    steps = _unpack_deltas(steps_b)
    tag, raw = values_b[:1], zlib.decompress(values_b[1:])
    values = np.frombuffer(raw, dtype='<i8' if tag == b'i' else '<f8')
    kind = epochs_b[:1]
    if kind == b'N':
        epochs = np.full(len(steps), NO_EPOCH, dtype=np.int64)
    elif kind == b'd':
        epochs = _unpack_deltas(epochs_b[1:])
    else:
        size = int.from_bytes(epochs_b[1:5], 'little')
        none = np.unpackbits(np.frombuffer(zlib.decompress(epochs_b[5:5 + size]), np.uint8))
        epochs = _unpack_deltas(epochs_b[5 + size:])
        epochs[none[:len(epochs)].astype(bool)] = NO_EPOCH
    times = _unpack_deltas(times_b).astype(np.float64) / 1000.0
    return steps, values, epochs, times


def sort_unique_last(steps, values, epochs, times):
    """Order points by step; where a step repeats, the last written value wins."""
    if len(steps) < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return steps, values, epochs, times
    # reverse, take first occurrence (= last written) of each step, in step order
    rev = slice(None, None, -1)
    uniq, idx = np.unique(steps[rev], return_index=True)
    pick = len(steps) - 1 - idx
    return uniq, values[pick], epochs[pick], times[pick]


def concat_values(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=np.float64)
    if len(parts) == 1:
        return parts[0]
    if all(p.dtype.kind == 'i' for p in parts):
        return np.concatenate(parts)
    return np.concatenate([p.astype(np.float64) for p in parts])
