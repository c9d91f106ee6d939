"""Downsampled series from the stored chunk overviews, without reading every point.

A chart bucket that is a whole number of overview blocks (``aim/storage/overview.py``)
has its M4 points among the blocks' stored points. So when a request's buckets would hold
``p >= 8`` points of a series, the series is reduced over buckets of ``B`` points instead,
``B`` the largest power of two (at least 16) not above ``2p``: between half the requested
number of buckets and all of it, each bucket exact. The stored points of the level that
fits (16 or 256) are read, and reduced again when a bucket spans several blocks.

This applies to the step axis of series whose steps are evenly spaced in every chunk (the
usual ``step += 1``) and whose overviews are all present and current; every other series
is reduced from its points, as before.
"""
from __future__ import annotations

import json
import math

import numpy as np

from aim.storage import overview
from aim.storage.chunks import CHUNK_POINTS
from aim.web.downsample import m4_by_starts, visible_slice

MIN_POINTS_PER_BUCKET = 8


def bucket_points(span: float, width: int, stride: int) -> int | None:
    """Points per bucket to reduce over (a power of two >= 16), or None when a requested
    bucket holds fewer than MIN_POINTS_PER_BUCKET points (the points are read instead)."""
    if stride <= 0 or span <= 0:
        return None
    per_bucket = span / width / stride
    if per_bucket < MIN_POINTS_PER_BUCKET:
        return None
    return max(overview.LEVELS[0], 1 << int(math.floor(math.log2(2 * per_bucket))))


def _stride_estimate(ref) -> float | None:
    if not ref.count or ref.count < 2 or ref.first_step is None or ref.last_step is None:
        return None
    return (ref.last_step - ref.first_step) / (ref.count - 1)


def _chunks_fit(rows: list, count: int) -> int | None:
    """The common stride when the overview rows ``(seq, n, first_step, stride, blob)``
    cover the series' ``count`` points as evenly spaced full chunks; else None."""
    if sum(r[1] for r in rows) != count:
        return None  # missing or stale overviews (or chunks written without them)
    strides = {r[3] for r in rows if r[3] is not None}
    if len(strides) != 1:
        return None
    stride = strides.pop()
    first = rows[0][2]
    last = len(rows) - 1
    for k, (seq, n, first_step, st, _) in enumerate(rows):
        if seq != k or (k < last and n != CHUNK_POINTS) or (st is None and n > 1):
            return None
        if first_step != first + k * CHUNK_POINTS * stride:
            return None
    return stride


def reduce_from_overviews(repo, refs: dict, req, lo: float, hi: float, width: int) -> dict:
    """``{index: (x, y, step)}`` for the series of ``refs`` (``{index: SeriesRef}``) that
    their overviews answer; the others are not in the result."""
    if req.x_axis != 'step' or req.since is not None or req.full or lo is None or hi is None:
        return {}
    x_min = req.x_min if req.x_min is not None else lo
    x_max = req.x_max if req.x_max is not None else hi
    span = x_max - x_min
    candidates = {}
    for i, ref in refs.items():
        stride = _stride_estimate(ref)
        if ref.series_id is not None and stride and bucket_points(span, width, stride):
            candidates[ref.series_id] = i
    if not candidates:
        return {}
    try:
        rows = repo.index.query(
            'SELECT series_id, seq, n, first_step, stride, points FROM overviews '
            'WHERE series_id IN (SELECT value FROM json_each(?)) ORDER BY series_id, seq',
            [json.dumps(list(candidates))])
    except Exception:  # a repository from before overviews, opened read-only
        return {}
    by_series: dict[int, list] = {}
    for series_id, *rest in rows:
        by_series.setdefault(series_id, []).append(rest)

    whole: list[tuple] = []      # (index, g, values, first, stride): kept as stored
    merged: list[tuple] = []     # (index, g, values, first, stride, bucket points)
    for series_id, chunk_rows in by_series.items():
        i = candidates[series_id]
        ref = refs[i]
        stride = _chunks_fit(chunk_rows, ref.count)
        size = bucket_points(span, width, stride) if stride else None
        if size is None:
            continue
        level = overview.LEVELS[1] if size >= overview.LEVELS[1] else overview.LEVELS[0]
        try:
            parts = [overview.decode(blob, level) for _, _, _, _, blob in chunk_rows]
        except (ValueError, IndexError, TypeError):
            continue  # undecodable overview: the points are read instead
        g = np.concatenate([pos + k * CHUNK_POINTS for k, (pos, _) in enumerate(parts)])
        values = np.concatenate([v for _, v in parts])
        item = (i, g, values, chunk_rows[0][2], stride)
        if size == level:
            whole.append(item)
        else:
            merged.append(item + (size,))

    out: dict[int, tuple] = {}
    for i, g, values, first, stride in whole:
        out[i] = _on_steps(g, values, first, stride, req)
    if merged:
        # One M4 pass over every merged series: buckets never straddle two series.
        g_all = np.concatenate([m[1] for m in merged])
        y_all = np.concatenate([m[2].astype(np.float64) for m in merged])
        key = np.concatenate([m[1] // m[5] for m in merged])
        lengths = np.array([len(m[1]) for m in merged])
        series_start = np.zeros(len(g_all), dtype=bool)
        series_start[np.cumsum(lengths)[:-1]] = True
        change = np.empty(len(g_all), dtype=bool)
        if len(g_all):
            change[0] = True
            np.not_equal(key[1:], key[:-1], out=change[1:])
            change |= series_start
            kept = m4_by_starts(y_all, np.flatnonzero(change))
            bounds = np.searchsorted(kept, np.cumsum(lengths)[:-1])
            offset = 0
            for m, picks in zip(merged, np.split(kept, bounds)):
                i, _, _, first, stride, _ = m
                local = picks - offset
                out[i] = _on_steps(m[1][local], m[2][local], first, stride, req)
                offset += len(m[1])
    return out


def _on_steps(g: np.ndarray, values: np.ndarray, first: int, stride: int, req) -> tuple:
    steps = g * stride + first
    x = steps.astype(np.float64)
    y = values.astype(np.float64)
    if req.x_min is not None or req.x_max is not None:
        part = visible_slice(x, req.x_min, req.x_max)
        x, y, steps = x[part], y[part], steps[part]
    return x, y, steps
