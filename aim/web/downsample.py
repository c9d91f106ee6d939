"""M4 downsampling: per x-bucket keep the first, last, minimum and maximum point.

Drawing a series into ``width`` pixel columns needs at most four points per column to be
exact: where the line enters the column, where it leaves, and its lowest and highest point.
Random sampling (what Aim 3 does) drops one-step spikes; M4 cannot.

Series are reduced one at a time: a 10,000-point series fits in the CPU cache, which makes
a loop over a thousand series faster than one pass over their concatenation. When every
bucket holds the same number of points (evenly spaced steps, the common case) the values
are reshaped into a (buckets, points) view and reduced without copying.
"""
from __future__ import annotations

import numpy as np

from aim.storage.overview import arg_extremes

DEFAULT_WIDTH = 1000
MAX_WIDTH = 20_000


def clamp_width(width: int | None) -> int:
    if width is None:
        return DEFAULT_WIDTH
    return max(1, min(int(width), MAX_WIDTH))


def visible_slice(x: np.ndarray, x_min: float | None, x_max: float | None) -> slice:
    """Index range of the points inside ``[x_min, x_max]`` plus one neighbour each side, so
    lines still reach the edges of a zoomed chart. ``x`` must be sorted ascending."""
    lo = 0 if x_min is None else int(np.searchsorted(x, x_min, side='left'))
    hi = len(x) if x_max is None else int(np.searchsorted(x, x_max, side='right'))
    if x_min is not None and lo > 0:
        lo -= 1
    if x_max is not None and hi < len(x):
        hi += 1
    return slice(lo, hi)


def _bucket_starts(x: np.ndarray, lo_x: float, hi_x: float, width: int) -> np.ndarray | None:
    """Index of the first point of each non-empty bucket when ``[lo_x, hi_x]`` is cut into
    ``width`` buckets; None when no bucket holds more than four points on average (M4
    would keep everything)."""
    n = len(x)
    if n <= 4:
        return None
    span = hi_x - lo_x
    if span > 0:
        col = ((x - lo_x) * (width / span)).astype(np.int64)
        np.clip(col, 0, width - 1, out=col)
    else:
        col = np.zeros(n, dtype=np.int64)
    starts = np.flatnonzero(np.diff(col, prepend=-1))
    return None if len(starts) * 4 >= n else starts


def _arg_extremes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmin and argmax along the last axis (the first of equal values); NaN never wins
    unless a row is all NaN (then 0)."""
    return arg_extremes(values, axis=values.ndim - 1)


def m4_indices(x: np.ndarray, y: np.ndarray, lo_x: float, hi_x: float, width: int) -> np.ndarray:
    """Sorted indices of the points M4 keeps when ``[lo_x, hi_x]`` is cut into ``width``
    buckets. ``x`` is sorted ascending; ``y`` is float64 of the same length.

    NaN never wins a bucket's min or max, but it is kept when it is a bucket's first or last
    point, so gaps in a series stay visible.
    """
    n = len(x)
    a, b = _inside(x, lo_x, hi_x)
    if a > 0 or b < n:
        # points beyond the range (a zoomed view's neighbours) are kept as they are and
        # never stand in for an extreme of the range itself
        inner = m4_indices(x[a:b], y[a:b], lo_x, hi_x, width) + a
        return np.concatenate([np.arange(a), inner, np.arange(b, n)])
    starts = _bucket_starts(x, lo_x, hi_x, width)
    if starts is None:  # at most four points per bucket: nothing to drop
        return np.arange(n)
    return m4_by_starts(y, starts)


def _inside(x: np.ndarray, lo_x: float, hi_x: float) -> tuple[int, int]:
    """Index range of the points of ``x`` (ascending) within ``[lo_x, hi_x]``."""
    return int(np.searchsorted(x, lo_x, 'left')), int(np.searchsorted(x, hi_x, 'right'))


def m4_by_starts(y: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sorted indices M4 keeps when bucket ``b`` holds the points ``starts[b]`` up to the
    next start (``starts`` ascending, ``starts[0] == 0``)."""
    n = len(y)
    n_buckets = len(starts)
    lengths = np.diff(starts, append=n)
    longest = int(lengths.max())
    if longest == int(lengths.min()):
        values = y.reshape(n_buckets, longest)

        def to_index(local: np.ndarray) -> np.ndarray:
            return starts + local
    else:
        # Pad short buckets by repeating their last point: a repeat changes no min or max.
        grid = starts[:, None] + np.arange(longest)
        np.minimum(grid, (starts + lengths - 1)[:, None], out=grid)
        values = y[grid]
        rows = np.arange(n_buckets)

        def to_index(local: np.ndarray) -> np.ndarray:
            return grid[rows, local]
    arg_min, arg_max = _arg_extremes(values)
    keep = np.zeros(n, dtype=bool)
    keep[starts] = True
    keep[starts + lengths - 1] = True
    keep[to_index(arg_min)] = True
    keep[to_index(arg_max)] = True
    return np.flatnonzero(keep)


def m4_indices_many(x: np.ndarray, ys: np.ndarray, lo_x: float, hi_x: float,
                    width: int) -> list[np.ndarray] | None:
    """``m4_indices`` for many series sharing one ``x`` (rows of ``ys``), in one pass.

    Series of a sweep are usually tracked at the same steps; reducing them as one 2-D
    array costs a few numpy calls in all instead of a few per series.
    """
    flat = m4_positions_many(x, ys, lo_x, hi_x, width)
    if flat is None:
        return None
    positions, counts = flat
    return np.split(positions, np.cumsum(counts)[:-1])


def m4_positions_many(x: np.ndarray, ys: np.ndarray, lo_x: float, hi_x: float,
                      width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The kept indices of every row of ``ys`` as one flat array (row 0's, then row 1's,
    each ascending) and the number kept per row (see :func:`m4_mark_many`)."""
    mark = m4_mark_many(x, ys, lo_x, hi_x, width)
    if mark is None:
        return None
    rows, n = mark.shape
    found = np.flatnonzero(mark)
    counts = np.diff(found.searchsorted(np.arange(rows + 1) * n))
    found -= np.repeat(np.arange(rows) * n, counts)
    return found, counts


def m4_mark_many(x: np.ndarray, ys: np.ndarray, lo_x: float, hi_x: float,
                 width: int) -> np.ndarray | None:
    """Which points of every row of ``ys`` (series sharing the ascending ``x``) M4 keeps
    when ``[lo_x, hi_x]`` is cut into ``width`` buckets, as a (rows, points) bool array;
    None when a few crowded buckets among sparse ones would make the shared layout cost
    more than reducing each series alone (``m4_indices``).

    A bucket's kept points are, in order, its first point, the earlier and the later of
    its minimum and maximum, and its last point; repeats among those four are one mark.
    Points beyond the range (a zoomed view's neighbours) are all kept and never stand in
    for an extreme of the range. A handful of whole-array operations, whatever the row
    count; ``np.flatnonzero(mark)`` gives every row's kept points in order at once."""
    n = len(x)
    rows = ys.shape[0]
    a, b = _inside(x, lo_x, hi_x)
    if a > 0 or b < n:
        inner = m4_mark_many(x[a:b], ys[:, a:b], lo_x, hi_x, width)
        if inner is None:
            return None
        mark = np.ones((rows, n), dtype=bool)
        mark[:, a:b] = inner
        return mark
    starts = _bucket_starts(x, lo_x, hi_x, width)
    if starts is None:
        return np.ones((rows, n), dtype=bool)
    n_buckets = len(starts)
    lengths = np.diff(starts, append=n)
    longest = int(lengths.max())
    if longest * n_buckets > 2 * n + 64:
        return None  # padding every bucket to the longest would multiply the work
    arg_min, arg_max = first_extremes(ys, starts, lengths, longest)
    mark = np.zeros((rows, n), dtype=bool)
    mark[:, starts] = True
    mark[:, starts + lengths - 1] = True
    flat = mark.reshape(-1)
    base = (np.arange(rows) * n)[:, None] + starts
    flat[base + arg_min] = True
    flat[base + arg_max] = True
    return mark


def first_extremes(ys: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                   longest: int) -> tuple[np.ndarray, np.ndarray]:
    """Position within its bucket of each bucket's first minimum and first maximum, for
    every row of ``ys``: two (rows, buckets) arrays. NaN never wins unless a bucket is all
    NaN (then 0).

    numpy's argmin over a short last axis costs about 100 ns a bucket (a call per
    bucket). Instead the buckets are laid out as (rows, position, bucket), short ones
    padded by repeating their last point (a repeat changes no extreme and comes after the
    point it repeats), so every step is one whole-array operation over the buckets: the
    minimum, where it is reached, and the first such position as the maximum of
    descending weights. Four times faster for 10,000-point series in 1,000 buckets."""
    rows = ys.shape[0]
    n_buckets = len(starts)
    grid = np.arange(longest)[:, None] + starts   # (position, bucket)
    np.minimum(grid, starts + lengths - 1, out=grid)
    values = np.take(ys, grid.ravel(), axis=1).reshape(rows, longest, n_buckets)
    weight_type = np.uint8 if longest < 255 else np.uint16 if longest < 65535 else np.int64
    weights = np.arange(longest, 0, -1, dtype=weight_type)[:, None]  # first wins most
    found = np.empty(values.shape, dtype=bool)
    weighed = np.empty(values.shape, dtype=weight_type)
    out = []
    for reduce, skip_nan in ((np.minimum, np.fmin), (np.maximum, np.fmax)):
        extreme = reduce.reduce(values, axis=1)
        if values.dtype.kind == 'f' and np.isnan(extreme).any():
            extreme = skip_nan.reduce(values, axis=1)  # NaN only where a bucket is all NaN
        np.equal(values, extreme[:, None, :], out=found)
        np.multiply(found.view(np.uint8), weights, out=weighed)
        top = weighed.max(axis=1).astype(np.int64)
        position = longest - top
        position[top == 0] = 0  # an all-NaN bucket: its first point
        out.append(position)
    return out[0], out[1]


MAX_SMOOTHING = 0.999


def ema(y: np.ndarray, factor: float) -> np.ndarray:
    """Exponential moving average ``s_i = s_{i-1} * factor + y_i * (1 - factor)``, started
    at the first finite value; NaN and ±inf pass through without resetting the average
    (what the charts drew before smoothing moved to the server).

    Computed on the full-resolution series, before M4, so the smoothed curve does not
    depend on the chart's width or zoom. A Python loop over 10 M points would take
    seconds; instead ``s_i = sum_k factor**k * b_{i-k}`` is summed by doubling (add the
    array shifted by 1, 2, 4, ... points times ``factor`` to that power) until the weight
    falls below 1e-17: log2 of the average's memory in whole-array passes (7 at 0.6, 12
    at 0.99), every term positive-weighted, so nothing cancels."""
    y = np.asarray(y, dtype=np.float64)
    out = y.copy()
    if not factor > 0 or len(y) == 0:
        return out
    f = min(float(factor), MAX_SMOOTHING)
    finite = np.isfinite(y)
    every = bool(finite.all())
    z = y if every else y[finite]
    if len(z) == 0:
        return out
    s = z * (1 - f)
    s[0] = z[0]  # the average starts at the first value
    shift, weight = 1, f
    while shift < len(s) and weight > 1e-17:
        s[shift:] += weight * s[:-shift]  # (numpy buffers the overlapping operands)
        shift, weight = shift * 2, weight * weight
    if every:
        return s
    out[finite] = s
    return out


SMOOTHING_KINDS = ('ema', 'cma')
MAX_WINDOW = 100_001


def cma(y: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average: each finite point becomes the mean of the finite points
    from ``window // 2`` before it to ``window // 2`` after it (fewer at the series'
    ends, where the window is cut); NaN and ±inf pass through and are left out of every
    window (as ``ema`` does). An even window is widened by one, so it stays centred.

    Two cumulative sums make it one pass whatever the window; the values are centred on
    their mean first, so the sums stay small and the differences keep their precision."""
    y = np.asarray(y, dtype=np.float64)
    out = y.copy()
    half = max(0, int(window)) // 2
    if half == 0 or len(y) == 0:
        return out
    finite = np.isfinite(y)
    every = bool(finite.all())
    z = y if every else y[finite]
    n = len(z)
    if n == 0:
        return out
    centre = float(z.mean())
    sums = np.concatenate(([0.0], np.cumsum(z - centre)))
    idx = np.arange(n)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, n)
    s = (sums[hi] - sums[lo]) / (hi - lo) + centre
    if every:
        return s
    out[finite] = s
    return out


def smooth(y: np.ndarray, kind: str, factor: float, window: int) -> np.ndarray:
    """``y`` smoothed by ``kind`` ('ema' with ``factor``, 'cma' with ``window``)."""
    if kind == 'cma':
        return cma(y, window)
    return ema(y, factor)


ROW_BLOCK_BYTES = 1 << 20   # rows smoothed together: about a megabyte stays in cache


def smooth_rows(ys: np.ndarray, kind: str, factor: float, window: int) -> np.ndarray:
    """Every row of ``ys`` (float64 or float32, C-ordered) smoothed as :func:`smooth`
    smooths one series (to the same bits for float64 rows); ``ys`` itself is overwritten
    and returned.

    A chart of a thousand series sharing their steps smooths them as one matrix: each
    pass of the EMA's doubling or the CMA's sums is one numpy call for a block of rows
    instead of one per series. Rows holding NaN or ±inf (those are left out of the
    average) are smoothed alone."""
    rows, n = ys.shape
    if rows == 0 or n == 0:
        return ys
    odd = ~np.isfinite(ys).all(axis=1)
    alone = {int(r): smooth(ys[r], kind, factor, window) for r in np.flatnonzero(odd)}
    ys[odd] = 0.0  # replaced below; zeros keep the passes free of NaN
    if kind == 'cma':
        _cma_rows(ys, window)
    else:
        _ema_rows(ys, factor)
    for r, row in alone.items():
        ys[r] = row
    return ys


def _ema_rows(ys: np.ndarray, factor: float) -> None:
    """:func:`ema` of every row, in place, for rows without NaN or ±inf: the same
    operations on the same values, so the same bits."""
    if not factor > 0:
        return
    f = min(float(factor), MAX_SMOOTHING)
    rows, n = ys.shape
    block = max(1, ROW_BLOCK_BYTES // (ys.itemsize * n))
    scratch = np.empty((min(block, rows), n), dtype=ys.dtype)
    # terms weighing less than this change no value in the rows' precision (as in ema
    # for float64)
    negligible = 1e-17 if ys.dtype == np.float64 else float(np.finfo(ys.dtype).eps) / 20
    for a in range(0, rows, block):
        s = ys[a:a + block]
        first = s[:, 0].copy()
        s *= 1 - f
        s[:, 0] = first  # the average starts at the first value
        shift, weight = 1, f
        while shift < n and weight > negligible:
            part = scratch[:len(s), :n - shift]
            np.multiply(s[:, :-shift], weight, out=part)
            s[:, shift:] += part
            shift, weight = shift * 2, weight * weight


def _cma_rows(ys: np.ndarray, window: int) -> None:
    """:func:`cma` of every row, in place, for rows without NaN or ±inf (the same
    operations on the same values as cma: the same bits for float64 rows)."""
    rows, n = ys.shape
    half = max(0, int(window)) // 2
    if half == 0:
        return
    whole = 2 * half + 1   # points in a window that is not cut by an end
    idx = np.arange(n)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, n)
    count = hi - lo
    ends = np.r_[0:half, n - half:n] if n > 2 * half else idx
    block = max(1, ROW_BLOCK_BYTES // (8 * n))
    sums = np.empty((min(block, rows), n + 1))   # float64 whatever the rows' type
    sums[:, 0] = 0.0
    inner = np.empty((min(block, rows), max(0, n - 2 * half)))
    for a in range(0, rows, block):
        s = ys[a:a + block]
        k = len(s)
        S = sums[:k]
        centre = s.mean(axis=1, dtype=np.float64)
        np.subtract(s, centre[:, None], out=S[:, 1:])
        np.cumsum(S[:, 1:], axis=1, out=S[:, 1:])
        # s[i] = (sums[hi[i]] - sums[lo[i]]) / count[i] + centre, as cma computes it:
        # by slices (count is the whole window) away from the ends, by index near them
        if n > 2 * half:
            middle = inner[:k]
            np.subtract(S[:, whole:], S[:, :n - 2 * half], out=middle)
            middle /= whole
            middle += centre[:, None]
            s[:, half:n - half] = middle
        s[:, ends] = (np.take(S, hi[ends], axis=1) - np.take(S, lo[ends], axis=1)) / \
            count[ends] + centre[:, None]
