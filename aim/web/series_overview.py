"""Downsampled series from the stored chunk overviews, without reading every point.

A chart bucket that is a whole number of overview blocks (``aim/storage/overview.py``)
has its M4 points among the blocks' stored points. So when a request's buckets would hold
``p >= 8`` points of a series, the series is reduced over buckets of ``B`` points instead,
``B`` the largest power of two (at least 16) not above ``2p``: between half the requested
number of buckets and all of it, each bucket exact. The stored points of the level that
fits (16 or 256) are read, and reduced again when a bucket spans several blocks.

This applies to whole-range views on the step axis of series whose steps are evenly
spaced in every chunk (the usual ``step += 1``) and whose overviews are all present and
current. Every other series, and every zoomed view (which re-reads the points it shows, at
full resolution once few enough), is reduced from its points.
"""
from __future__ import annotations

import json
import math
import struct

import numpy as np

from aim.storage import overview
from aim.storage.chunks import CHUNK_POINTS
from aim.web.downsample import m4_by_starts

MIN_POINTS_PER_BUCKET = 8


def bucket_points(span: float, width: int, stride: float) -> int | None:
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
    """The common stride when the overview rows ``(seq, n, first_step, stride, ...)``
    cover the series' ``count`` points as evenly spaced full chunks; else None."""
    if sum(r[1] for r in rows) != count:
        return None  # missing or stale overviews (or chunks written without them)
    strides = {r[3] for r in rows if r[3] is not None}
    if len(strides) != 1:
        return None
    stride = strides.pop()
    first = rows[0][2]
    last = len(rows) - 1
    for k, (seq, n, first_step, st, *_) in enumerate(rows):
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
    if req.x_min is not None or req.x_max is not None:
        # A zoomed view re-reads the points it shows (only the chunks holding them): a
        # bucket of stored blocks cut by the view's edge would lose the extremes of the
        # part inside it.
        return {}
    span = hi - lo
    candidates = {}
    for i, ref in refs.items():
        stride = _stride_estimate(ref)
        if ref.series_id is not None and stride and bucket_points(span, width, stride):
            candidates[ref.series_id] = i
    if not candidates:
        return {}
    if not overview.readable(repo.index):  # from before overviews, opened read-only
        return {}
    rows = repo.index.query(
        'SELECT series_id, seq, n, first_step, stride, points FROM overviews '
        'WHERE series_id IN (SELECT value FROM json_each(?)) ORDER BY series_id, seq',
        [json.dumps(list(candidates))])
    by_series: dict[int, list] = {}
    for series_id, *rest in rows:
        by_series.setdefault(series_id, []).append(rest)

    # Which series the overviews answer, at which level and bucket size; then every chosen
    # series is handled in whole-array operations over all of them at once.
    chosen = []   # (index, first step, stride, bucket points, level, [(k, blob)])
    for series_id, chunk_rows in by_series.items():
        i = candidates[series_id]
        if any(r[4] is None for r in chunk_rows):
            continue  # a series that fit in one chunk when it was written: no extremes
        stride = _chunks_fit(chunk_rows, refs[i].count)
        if not stride:
            continue
        size = bucket_points(span, width, stride)
        if size is None:
            continue
        level = overview.LEVELS[1] if size >= overview.LEVELS[1] else overview.LEVELS[0]
        first = chunk_rows[0][2]
        blobs = [(k, r[4]) for k, r in enumerate(chunk_rows)]
        chosen.append((i, first, stride, size, level, blobs))
    accepted, decoded, per_series = [], [], []
    for item in chosen:
        try:
            parts = [(k, *overview.decode(blob, item[4])) for k, blob in item[5]]
        except (ValueError, IndexError, TypeError, struct.error):
            continue  # an undecodable overview: this series' points are read instead
        accepted.append(item)
        decoded.append(parts)
        per_series.append(sum(len(pos) for _, pos, _ in parts))
    if not accepted:
        return {}
    # Few and small temporaries: fresh memory is what a large answer costs most (every
    # new page is a fault). x is built in place: index in the series, then the step.
    x = np.concatenate([pos for parts in decoded for _, pos, _ in parts]).astype(np.float64)
    chunk_index = [k for parts in decoded for k, _, _ in parts]
    if any(chunk_index):
        shift = np.repeat(np.array(chunk_index, dtype=np.int32),
                          [len(pos) for parts in decoded for _, pos, _ in parts])
        shift *= CHUNK_POINTS
        x += shift
        del shift
    y = np.concatenate([vals for parts in decoded for _, _, vals in parts])
    y = y.astype(np.float64, copy=False)
    starts = np.cumsum([0] + per_series)
    bounds = starts[1:-1]
    sizes = {a[3] for a in accepted}
    merged = any(a[3] != a[4] for a in accepted)
    if merged:
        # Buckets of several blocks: M4 again over the stored points, in one pass over
        # every series (a series boundary always starts a bucket).
        if len(sizes) == 1:
            key = x // sizes.pop()
        else:
            key = np.empty(len(x))
            for a, lo_i, hi_i in zip(accepted, starts[:-1], starts[1:]):
                np.floor_divide(x[lo_i:hi_i], a[3], out=key[lo_i:hi_i])
        change = np.empty(len(x), dtype=bool)
        change[0] = True
        np.not_equal(key[1:], key[:-1], out=change[1:])
        del key
        change[bounds] = True
        kept = m4_by_starts(y, np.flatnonzero(change))
        del change
        bounds = np.searchsorted(kept, bounds)
        starts = np.concatenate([[0], bounds, [len(kept)]])
        x, y = x[kept], y[kept]
    strides = {a[2] for a in accepted}
    firsts = {a[1] for a in accepted}
    if len(strides) == 1 and len(firsts) == 1:  # a sweep: one stride, one first step
        x *= strides.pop()
        x += firsts.pop()
    else:
        for a, lo_i, hi_i in zip(accepted, starts[:-1], starts[1:]):
            x[lo_i:hi_i] *= a[2]
            x[lo_i:hi_i] += a[1]
    # on the step axis x is the step (exact below 2**53)
    return {item[0]: (xs, ys, xs) for item, xs, ys in zip(accepted, np.split(x, bounds),
                                                            np.split(y, bounds))}

