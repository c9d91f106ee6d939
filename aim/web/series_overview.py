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
import struct

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
    # A zoomed view reads only the chunks it shows: their summaries first (the columns in
    # front of the blob, which SQLite reads without the blob's pages), then their blobs.
    zoomed = req.x_min is not None or req.x_max is not None
    columns = 'series_id, seq, n, first_step, stride' + ('' if zoomed else ', points')
    try:
        rows = repo.index.query(
            f'SELECT {columns} FROM overviews WHERE series_id IN '
            f'(SELECT value FROM json_each(?)) ORDER BY series_id, seq',
            [json.dumps(list(candidates))])
    except Exception:  # a repository from before overviews, opened read-only
        return {}
    by_series: dict[int, list] = {}
    for series_id, *rest in rows:
        by_series.setdefault(series_id, []).append(rest)

    # Which series the overviews answer, at which level and bucket size; then every chosen
    # series is handled in whole-array operations over all of them at once.
    chosen = []   # (index, first step, stride, bucket points, level, [(k, blob)], series id)
    for series_id, chunk_rows in by_series.items():
        i = candidates[series_id]
        stride = _chunks_fit(chunk_rows, refs[i].count)
        size = bucket_points(span, width, stride) if stride else None
        if size is None:
            continue
        level = overview.LEVELS[1] if size >= overview.LEVELS[1] else overview.LEVELS[0]
        first = chunk_rows[0][2]
        if zoomed:
            # the chunks holding [x_min, x_max], and one more each side for the
            # neighbours that carry the lines to the chart's edges
            k_lo, k_hi = 0, len(chunk_rows) - 1
            if req.x_min is not None:
                k_lo = max(k_lo, int((req.x_min - first) // (stride * CHUNK_POINTS)) - 1)
            if req.x_max is not None:
                k_hi = min(k_hi, int((req.x_max - first) // (stride * CHUNK_POINTS)) + 1)
            if k_lo > k_hi:
                continue  # the view misses the series: the points path says what shows
            blobs = [(k, None) for k in range(k_lo, k_hi + 1)]
        else:
            blobs = [(k, r[4]) for k, r in enumerate(chunk_rows)]
        chosen.append((i, first, stride, size, level, blobs, series_id))
    if zoomed:
        _fill_blobs(repo, chosen)
    accepted, decoded, per_series = [], [], []
    for item in chosen:
        try:
            parts = [(k, *overview.decode(blob, item[4])) for k, blob in item[5]]
        except (ValueError, IndexError, TypeError, AttributeError, struct.error):
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
    out: dict[int, tuple] = {}
    for item, xs, ys in zip(accepted, np.split(x, bounds), np.split(y, bounds)):
        if req.x_min is not None or req.x_max is not None:
            part = visible_slice(xs, req.x_min, req.x_max)
            xs, ys = xs[part], ys[part]
        out[item[0]] = (xs, ys, xs)  # on the step axis x is the step (exact below 2**53)
    return out


def _fill_blobs(repo, chosen: list) -> None:
    """Put the overview blobs of the chunks each chosen series names into its list."""
    ranges = [[item[6], item[5][0][0], item[5][-1][0]] for item in chosen if item[5]]
    if not ranges:
        return
    found = {(sid, seq): blob for sid, seq, blob in repo.index.query(
        "SELECT o.series_id, o.seq, o.points FROM json_each(?) j JOIN overviews o "
        "ON o.series_id = json_extract(j.value, '$[0]') AND o.seq BETWEEN "
        "json_extract(j.value, '$[1]') AND json_extract(j.value, '$[2]')",
        [json.dumps(ranges)])}
    for item in chosen:
        item[5][:] = [(k, found.get((item[6], k))) for k, _ in item[5]]
