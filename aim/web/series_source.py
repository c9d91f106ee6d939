"""Select metric series for the charts and turn them into downsampled (x, y) arrays.

A request names series by a metric query or by a list of run hashes, picks an x axis
(step, epoch, relative time, wall time), a visible range and a width in buckets, and may
ask only for points newer than ``since`` (live updates). Reduced series are cached by the
series' summary (count, last step, last time), so a repeated view reads nothing from disk.
"""
from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aim.storage import overview
from aim.storage.encoding import canonical_context
from aim.web.api_errors import ApiError
from aim.web.downsample import (
    MAX_SMOOTHING,
    MAX_WINDOW,
    SMOOTHING_KINDS,
    clamp_width,
    m4_indices,
    m4_mark_many,
    m4_positions_many,
    smooth,
    smooth_rows,
    visible_slice,
)
from aim.web.query_bridge import matching_metrics
from aim.web.series_overview import reduce_from_overviews

X_AXES = ('step', 'epoch', 'relative_time', 'wall_time')
METRIC_AXIS = 'metric:'  # x_axis=metric:<name>: x is that metric's value at the step
DEFAULT_MAX_SERIES = 1000
HARD_MAX_SERIES = 20_000


@dataclass
class SeriesRequest:
    query: str = ''
    runs: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    x_axis: str = 'step'
    width: int | None = None
    x_min: float | None = None
    x_max: float | None = None
    since: float | None = None
    full: bool = False  # no downsampling at all (export, or a small zoomed range)
    max_series: int = DEFAULT_MAX_SERIES
    # EMA factor applied to the full-resolution points before downsampling (0: none)
    smoothing: float = 0.0
    # 'ema' (with ``smoothing``) or 'cma': centred moving average over ``window`` points
    smoothing_kind: str = 'ema'
    window: int = 0
    # 'f32': the answer goes out as float32, so series read as a matrix are smoothed and
    # reduced in float32 (after subtracting each series' first value, see _reduce_block)
    precision: str = 'f64'

    @property
    def align_metric(self) -> str | None:
        """The metric whose value is the x axis (``x_axis=metric:<name>``), else None."""
        if self.x_axis.startswith(METRIC_AXIS):
            return self.x_axis[len(METRIC_AXIS):]
        return None

    @property
    def smoothed(self) -> bool:
        if self.smoothing_kind == 'cma':
            return self.window > 1
        return self.smoothing > 0

    @property
    def smoothing_key(self) -> tuple:
        """What the smoothing makes of the points (part of every cache key)."""
        if not self.smoothed:
            return ()
        if self.smoothing_kind == 'cma':
            return ('cma', self.window | 1)
        return ('ema', self.smoothing)

    def check(self) -> None:
        if self.x_axis not in X_AXES and not self.align_metric:
            raise ApiError(400, 'InvalidXAxis', f'Unknown x axis {self.x_axis!r}; use one of '
                           f'{", ".join(X_AXES)} or metric:<name>.', x_axis=self.x_axis)
        if self.smoothing_kind not in SMOOTHING_KINDS:
            raise ApiError(400, 'InvalidSmoothing', f'Unknown smoothing_kind '
                           f'{self.smoothing_kind!r}; use ema or cma.')
        if not 0 <= self.window <= MAX_WINDOW:
            raise ApiError(400, 'InvalidSmoothing', f'window must be between 0 and '
                           f'{MAX_WINDOW}, got {self.window}.')
        if self.x_min is not None and self.x_max is not None and self.x_min > self.x_max:
            raise ApiError(400, 'InvalidRange', f'x_min ({self.x_min}) is greater than x_max '
                           f'({self.x_max}); swap them.')
        if not 1 <= self.max_series <= HARD_MAX_SERIES:
            raise ApiError(400, 'InvalidLimit', f'max_series must be between 1 and '
                           f'{HARD_MAX_SERIES}, got {self.max_series}.')
        if not 0 <= self.smoothing <= MAX_SMOOTHING:
            raise ApiError(400, 'InvalidSmoothing', f'smoothing must be between 0 and '
                           f'{MAX_SMOOTHING}, got {self.smoothing}.')
        if self.smoothed and self.since is not None:
            raise ApiError(400, 'InvalidSmoothing', 'smoothing needs every point of a '
                           'series, so it cannot be combined with since; leave one out.')


@dataclass
class SeriesRef:
    """One selected series, before its values are read."""

    run_hash: str
    name: str
    context: dict
    metric: Any = None          # SDK Metric view, when the query layer gave one
    count: int | None = None
    first_step: int | None = None
    last_step: int | None = None
    last_time: float | None = None
    series_id: int | None = None  # the storage's id, for reading many series at once

    @property
    def context_key(self) -> str:
        return canonical_context(self.context)


@dataclass
class SeriesData:
    ref: SeriesRef
    x: np.ndarray
    y: np.ndarray
    step: np.ndarray


class ReducedCache:
    """LRU of series reduced from their points, bounded by the number of points it holds.
    (Series reduced from stored overviews are not kept: reading those again is cheaper
    than the memory a cache of them would hold.)"""

    def __init__(self, max_points: int = 8_000_000):
        self.max_points = max_points
        self.points = 0
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key, value: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        size = len(value[0])
        with self.lock:
            if key in self.items:
                return
            self.items[key] = value
            self.points += size
            while self.points > self.max_points and self.items:
                _, old = self.items.popitem(last=False)
                self.points -= len(old[0])


# selection -----------------------------------------------------------------------------

# System metrics (__system__cpu, ...) after a run's other series: '_' sorts before the
# lower-case letters, so by name alone they came first (and filled max_series first).
SYSTEM_LAST = "substr(name, 1, 10) = '__system__', "
SYSTEM_LAST_S = "substr(s.name, 1, 10) = '__system__', "

@functools.lru_cache(maxsize=4096)
def _parsed_context(text: str) -> dict:
    return json.loads(text)


def _context(text: str) -> dict:
    """A series' context from its canonical JSON (a thousand series of a sweep share a
    handful of contexts: parsed once, copied for each)."""
    return dict(_parsed_context(text))


def _summary_rows(repo, run_hashes: list[str], names: list[str]) -> list[tuple]:
    sql = ('SELECT run_hash, name, context, count, first_step, last_step, last_time, id '
           'FROM series WHERE run_hash IN (SELECT value FROM json_each(?))')
    args = [json.dumps(run_hashes)]
    if names:
        sql += ' AND +name IN (SELECT value FROM json_each(?))'  # by run, not by name
        args.append(json.dumps(names))
    return repo.index.query(sql + f' ORDER BY run_hash, {SYSTEM_LAST}name, context', args)


def select_series(repo, req: SeriesRequest,
                  queries=None) -> tuple[list[SeriesRef], int | None]:
    """The series a request names, at most ``max_series`` of them, and how many matched
    (None: more than ``max_series``, not counted). ``queries`` (a
    :class:`aim.web.query_pool.QueryWorkers`) evaluates a query in a worker process, else
    it is evaluated here."""
    refs: list[SeriesRef] = []
    total = 0
    if req.runs:
        order = {h: i for i, h in enumerate(req.runs)}
        rows = sorted(_summary_rows(repo, req.runs, req.names), key=lambda r: order[r[0]])
        for run_hash, name, context, count, first, last, last_time, series_id in rows:
            total += 1
            if len(refs) < req.max_series:
                refs.append(SeriesRef(run_hash, name, _context(context), None, count, first,
                                      last, last_time, series_id))
        return refs, total
    if not req.query.strip():
        # No query: every series, newest runs first, straight from the index.
        # Every run has at least one series, so the newest max_series runs hold the newest
        # max_series series: pick them through the creation-time index first.
        # (archived runs left out, as by any query that does not mention run.archived)
        sql = ('SELECT s.run_hash, s.name, s.context, s.count, s.first_step, s.last_step, '
               's.last_time, s.id FROM (SELECT hash, creation_time FROM runs '
               'WHERE COALESCE(archived, 0) = 0 '
               'ORDER BY creation_time DESC LIMIT ?) r JOIN series s ON s.run_hash = r.hash')
        args: list = []
        if req.names:
            sql += ' WHERE +s.name IN (SELECT value FROM json_each(?))'
            args.append(json.dumps(req.names))
        order_sql = (f' ORDER BY r.creation_time DESC, s.run_hash, {SYSTEM_LAST_S}s.name, '
                     's.context LIMIT ?')
        rows = repo.index.query(sql + order_sql, [req.max_series] + args + [req.max_series])
        count_sql = ('SELECT COUNT(*) FROM series s WHERE s.run_hash IN (SELECT hash FROM '
                     'runs WHERE COALESCE(archived, 0) = 0)')
        if req.names:
            count_sql += ' AND s.name IN (SELECT value FROM json_each(?))'
        total = repo.index.query(count_sql, args)[0][0]
        if len(rows) < min(total, req.max_series):
            # Some of the newest runs lack the named metrics: look through every run.
            rows = repo.index.query(sql.replace('LIMIT ?', '') + order_sql,
                                    args + [req.max_series])
        for run_hash, name, context, count, first, last, last_time, series_id in rows:
            refs.append(SeriesRef(run_hash, name, _context(context), None, count, first,
                                  last, last_time, series_id))
        return refs, total
    if queries is not None:
        keys = queries.metric_keys(req.query, req.names, req.max_series + 1)
        refs = [SeriesRef(h, name, context) for h, name, context in keys[:req.max_series]]
        _fill_summaries(repo, refs)
        return refs, None if len(keys) > req.max_series else len(keys)
    more = False
    for metric in matching_metrics(repo, req.query):
        if req.names and metric.name not in req.names:
            continue
        if len(refs) == req.max_series:
            # Counting every match of a broad query costs more than drawing the first
            # thousand; the answer says "more than max_series" instead (total None).
            more = True
            break
        refs.append(SeriesRef(metric.run.hash, metric.name, dict(metric.context or {}),
                              metric))
    _fill_summaries(repo, refs)
    return refs, None if more else len(refs)


def _fill_summaries(repo, refs: list[SeriesRef]) -> None:
    if not refs:
        return
    wanted = {(r.run_hash, r.name, r.context_key): r for r in refs}
    for run_hash, name, context, count, first, last, last_time, series_id in _summary_rows(
            repo, sorted({r.run_hash for r in refs}), sorted({r.name for r in refs})):
        ref = wanted.get((run_hash, name, context))
        if ref is not None:
            ref.count, ref.first_step, ref.last_step, ref.last_time = count, first, last, \
                last_time
            ref.series_id = series_id


# loading -------------------------------------------------------------------------------

def _metric_of(repo, ref: SeriesRef, runs_cache: dict):
    if ref.metric is None:
        run = runs_cache.get(ref.run_hash)
        if run is None:
            run = runs_cache[ref.run_hash] = repo.get_run(ref.run_hash)
        ref.metric = run.get_metric(ref.name, ref.context) if run is not None else None
    return ref.metric


def _as_float(array) -> np.ndarray:
    if array is None:
        return np.empty(0)
    arr = np.asarray(array)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr], dtype=np.float64)
    return arr.astype(np.float64, copy=False)


def load_series(repo, ref: SeriesRef, x_axis: str, runs_cache: dict,
                since: float | None = None,
                step_range: tuple[int, int] | None = None) -> SeriesData:
    """Full-resolution x, y and step arrays of one series on the requested x axis;
    ``step_range`` (start, stop) reads only the chunks holding those steps."""
    metric = _metric_of(repo, ref, runs_cache)
    if metric is None:
        empty = np.empty(0)
        return SeriesData(ref, empty, empty, empty)
    if step_range is not None and x_axis == 'step' and since is None:
        steps, (values, _, _) = metric.data.range(*step_range)
        return on_axis(ref, x_axis, since, steps, values)
    steps, values = metric.values.sparse_numpy()
    epochs = metric.epochs if x_axis == 'epoch' else None
    times = None
    if x_axis in ('relative_time', 'wall_time') or since is not None:
        times = metric.timestamps
    return on_axis(ref, x_axis, since, steps, values, epochs, times)


def on_axis(ref: SeriesRef, x_axis: str, since: float | None, steps, values, epochs=None,
            times=None) -> SeriesData:
    """A series' points as x (on ``x_axis``), y and step arrays, x ascending; only the
    points written after ``since`` when it is given (``times`` is then needed)."""
    steps = np.asarray(steps, dtype=np.int64)
    y = _as_float(values)
    times = _as_float(times) if times is not None else None
    if x_axis == 'step':
        x = steps.astype(np.float64)
    elif x_axis == 'epoch':
        x = _as_float(epochs)
        known = np.isfinite(x) & (x > -9e18)  # -2**63 marks a point without an epoch
        steps, y, x = steps[known], y[known], x[known]
        if times is not None:
            times = times[known]
    elif x_axis == 'relative_time':
        x = times - times[0] if len(times) else times
    else:
        x = times
    if since is not None and times is not None and len(times):
        newer = times > since
        steps, y, x = steps[newer], y[newer], x[newer]
    if len(x) > 1 and np.any(x[1:] < x[:-1]):
        order = np.argsort(x, kind='stable')
        steps, y, x = steps[order], y[order], x[order]
    return SeriesData(ref, x, y, steps)


def _zoom_steps(req: SeriesRequest) -> tuple[int, int] | None:
    """Steps to read for a zoomed step-axis view: the visible range plus one visible width
    either side, so the neighbours that carry lines to the chart's edges come along."""
    if req.x_axis != 'step' or req.x_min is None or req.x_max is None:
        return None
    margin = max(1.0, req.x_max - req.x_min)
    return int(np.floor(req.x_min - margin)), int(np.ceil(req.x_max + margin)) + 1


def _flush_local_writers(run_hashes: set[str]) -> None:
    """Fold what runs written by this very process still hold in their journals, so the
    chart shows every point tracked before the request (other processes fold their own
    twice a second)."""
    from aim.sdk.run import _live_runs
    for run in list(_live_runs.values()):
        live = getattr(run, '_live', None)
        if live is not None and run.hash in run_hashes:
            live.flush()


def _load_bulk(repo, refs: list[SeriesRef], x_axis: str, since: float | None,
               step_range: tuple[int, int] | None) -> list[SeriesData]:
    """Load many series with one statement per batch (see ``read_series_many``)."""
    from aim.storage.runfile import read_series_many
    columns = ['values']
    if x_axis == 'epoch':
        columns.append('epochs')
    if x_axis in ('relative_time', 'wall_time') or since is not None:
        columns.append('times')
    first = last = None
    if step_range is not None and x_axis == 'step' and since is None:
        first, last = step_range[0], step_range[1] - 1
    _flush_local_writers({r.run_hash for r in refs})
    if since is not None and not overview.readable(repo.index):
        since_chunks = None  # a read-only repository from before overviews: every chunk
    else:
        since_chunks = since
    ids = [r.series_id for r in refs if r.series_id is not None]  # all of them (_load_all)
    arrays = read_series_many(repo.index, ids, columns, first, last,
                              written_after=since_chunks)
    out = []
    for ref in refs:
        found = arrays.get(ref.series_id)
        if found is None:  # deleted since it was selected
            empty = np.empty(0)
            out.append(SeriesData(ref, empty, empty, empty))
            continue
        steps, values, epochs, times = found
        out.append(on_axis(ref, x_axis, since, steps, values, epochs, times))
    return out


def _load_all(repo, refs: list[SeriesRef], x_axis: str, since: float | None,
              step_range: tuple[int, int] | None = None) -> list[SeriesData]:
    """Full-resolution points of ``refs``, in order: one statement for every series the
    index named (all of them, unless one was deleted while the request ran)."""
    if refs and all(r.series_id is not None for r in refs):
        return _load_bulk(repo, refs, x_axis, since, step_range)
    runs_cache: dict = {}
    return [load_series(repo, r, x_axis, runs_cache, since, step_range) for r in refs]


def _step_range(refs: Iterable[SeriesRef]) -> tuple[float, float] | None:
    firsts: list[int] = []
    lasts: list[int] = []
    for r in refs:
        if r.first_step is None or r.last_step is None:
            return None
        firsts.append(r.first_step)
        lasts.append(r.last_step)
    if not firsts:
        return None
    return float(min(firsts)), float(max(lasts))


def _reduce_shared_x(loaded: dict, req: SeriesRequest, lo, hi, width: int) -> dict:
    """M4 of the series that share their x values with at least one other (a sweep
    tracked at the same steps), reduced together; {index in loaded: (x, y, step)}."""
    groups: dict[tuple, list[int]] = {}
    for i, data in loaded.items():
        x = data.x
        if len(x) > 4:
            groups.setdefault((len(x), float(x[0]), float(x[-1])), []).append(i)
    kept: dict[int, tuple] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        x = loaded[members[0]].x
        same = [i for i in members if loaded[i].x is x or np.array_equal(loaded[i].x, x)]
        if len(same) < 2:
            continue
        part = visible_slice(x, req.x_min, req.x_max)
        xs = x[part]
        # a few MB of rows at a time: the temporary arrays of a whole batch (80 MB for
        # 1,000 series of 10,000 points, twice) cost more in fresh pages than in work
        chunk = max(2, SHARED_X_CHUNK_POINTS // max(1, len(xs)))
        for c in range(0, len(same), chunk):
            rows_of = same[c:c + chunk]
            ys = np.stack([loaded[i].y[part] for i in rows_of])
            flat = m4_positions_many(xs, ys, lo, hi, width)
            if flat is None:
                continue
            positions, counts = flat
            rows = np.repeat(np.arange(len(rows_of)), counts)
            bounds = np.cumsum(counts)[:-1]
            x_kept = np.split(xs[positions], bounds)
            y_kept = np.split(ys[rows, positions], bounds)
            if req.x_axis == 'step':  # x is the step: shared too
                step_kept = np.split(loaded[same[0]].step[part][positions], bounds)
            else:
                step_kept = [loaded[i].step[part][k] for i, k in
                             zip(rows_of, np.split(positions, bounds))]
            for i, xk, yk, sk in zip(rows_of, x_kept, y_kept, step_kept):
                kept[i] = (xk, yk, sk)
    return kept


SHARED_X_CHUNK_POINTS = 1 << 20   # points of the series reduced together (8 MB of y)


def _reduce(loaded: dict, out: list, req: SeriesRequest, lo, hi, width: int,
            cache: ReducedCache | None) -> None:
    """Put the reduced (or, for ``req.full``, visible) points of ``loaded`` into ``out``;
    remember them in ``cache`` when it is given."""
    kept = {} if req.full else _reduce_shared_x(loaded, req, lo, hi, width)
    for i, data in loaded.items():
        if i in kept:
            x, y, step = kept[i]
        else:
            part = visible_slice(data.x, req.x_min, req.x_max)
            x, y, step = data.x[part], data.y[part], data.step[part]
            if not req.full:
                keep = m4_indices(x, y, lo, hi, width)
                if len(keep) < len(x):
                    x, y, step = x[keep], y[keep], step[keep]
        out[i] = SeriesData(data.ref, x, y, step)
        ref = data.ref
        if cache is not None and ref.count is not None:
            cache.put(_cache_key(ref, req, width, lo, hi), (x, y, step))


def _matrix_fits(req: SeriesRequest, refs: list[SeriesRef]) -> bool:
    """Whether ``_load_reduce_matrix`` can serve these series: steps on x, whole series
    (not only the points after ``since``), downsampled, and every series known by id."""
    return (req.x_axis == 'step' and req.since is None and not req.full
            and all(r.series_id is not None for r in refs))


def _load_reduce_matrix(repo, indexed: dict[int, SeriesRef], req: SeriesRequest,
                        zoom: tuple[int, int] | None, lo, hi, width: int,
                        out: list) -> dict[int, SeriesData]:
    """Reduce the series of ``indexed`` ({position in out: ref}) that share their steps
    with another into ``out``: their step columns are read first, then the values of a
    block of rows at a time (a few MB, whatever the number and length of the series),
    smoothed and reduced as a matrix, on worker threads where there are cores for them
    (``_block_pool``). Returns the others, read, not yet smoothed or reduced.

    (Not kept in the ReducedCache: like answers from the overviews, reducing them again
    costs less than the memory a cache of them holds, and a repeated view reuses its
    encoded answer anyway.)"""
    from aim.storage.runfile import decode_series, read_chunk_rows, unreadable_series
    from aim.web.series_matrix import BadSeries, group_by_steps, layout_key
    first = last = None
    if zoom is not None:
        first, last = zoom[0], zoom[1] - 1
    _flush_local_writers({r.run_hash for r in indexed.values()})
    by_id: dict[int, list[int]] = {}
    for i, ref in indexed.items():
        by_id.setdefault(int(ref.series_id), []).append(i)  # type: ignore[arg-type]
    groups, alone = group_by_steps(read_chunk_rows(repo.index, list(by_id), (), first, last),
                                   first, last)
    read_alone: dict[int, list[tuple]] = {}

    def read_reduce(group, x, part, ids):
        """One block: read its values, check its layout, smooth and reduce it."""
        rows_by_id = read_chunk_rows(repo.index, ids, ('values',), first, last)
        same, moved = [], {}
        for series_id, rows in rows_by_id.items():
            if layout_key(rows) == group.key:
                same.append(series_id)
            else:  # written to since its steps were read: read alone
                moved[series_id] = rows
        kept = _reduce_block(group, same, rows_by_id, x, part, req, lo, hi, width) \
            if same else None
        return same, kept, moved

    jobs: list = []
    pool = _block_pool(repo)
    for group in groups:
        x = group.steps.astype(np.float64)
        part = visible_slice(x, req.x_min, req.x_max)
        block = max(2, SHARED_X_CHUNK_POINTS // max(1, group.width))
        for start in range(0, len(group.ids), block):
            job = (group, x, part, group.ids[start:start + block])
            jobs.append(pool.submit(read_reduce, *job) if pool else job)
    for n, job in enumerate(jobs):
        try:
            ids, kept, moved = job.result() if pool else read_reduce(*job)
        except BaseException as e:
            for later in jobs[n + 1:] if pool else []:
                later.cancel()
            if isinstance(e, BadSeries):
                raise unreadable_series(repo.index, e.series_id, e.error) from None
            raise
        read_alone.update(moved)
        if kept is None:
            continue
        x_kept, y_kept, step_kept, counts = kept
        ends = np.cumsum(counts).tolist()
        for series_id, a, b in zip(ids, [0] + ends[:-1], ends):
            for i in by_id[series_id]:
                out[i] = SeriesData(indexed[i], x_kept[a:b], y_kept[a:b], step_kept[a:b])
    if alone:
        read_alone.update(read_chunk_rows(repo.index, alone, ('values',), first, last))
    rest: dict[int, SeriesData] = {}
    for series_id, rows in read_alone.items():
        try:
            steps, values, _, _ = decode_series(rows, first, last, ('steps', 'values'))
        except Exception as e:
            raise unreadable_series(repo.index, series_id, e) from None
        for i in by_id[series_id]:
            rest[i] = on_axis(indexed[i], 'step', None, steps, values)
    return rest


_POOL: Any = None
_POOL_LOCK = threading.Lock()


def _block_pool(repo):
    """Threads that read and reduce blocks of a sweep two (or up to four) at a time: one
    reads its block (SQLite releases the interpreter while it reads) while another
    smooths and reduces (numpy releases it on whole-array operations). On the 2-core
    machine a first smoothed view of 1,000 x 10,000 points took 158 ms with two threads
    against 221 ms with none (three: 180 ms). None on a single core, and for PostgreSQL,
    whose connections are per thread (the pool's threads would hold one per repository
    for as long as the process lives)."""
    global _POOL
    import os
    workers = min(4, os.cpu_count() or 1)
    if workers < 2 or getattr(repo.index, 'dialect', None) != 'sqlite':
        return None
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor
            _POOL = ThreadPoolExecutor(workers, thread_name_prefix='aim-series')
        return _POOL


def _reduce_block(group, ids: list[int], rows_by_id: dict, x: np.ndarray, part: slice,
                  req: SeriesRequest, lo, hi, width: int):
    """Fill, smooth and reduce a block of a group's series: their kept x, y and steps,
    one series after another, and how many points each kept.

    For a float32 answer the rows are float32 with each series' first value subtracted
    (added back to the kept points in float64): half the memory to move, and an average
    or an extreme of values near zero keeps its digits, so every kept point is within a
    few float32 units of the float64 result, relative to the series' range, not to its
    magnitude (a millionth of a pixel)."""
    from aim.web.series_matrix import fill_rows
    dtype = np.float32 if req.precision == 'f32' else np.float64
    ys, centres = fill_rows(group, ids, rows_by_id, np.empty((len(ids), group.width), dtype))
    if req.smoothed:
        smooth_rows(ys, req.smoothing_kind, req.smoothing, req.window)
    xs, visible = x[part], ys[:, part]
    mark = m4_mark_many(xs, visible, lo, hi, width)
    if mark is None:  # crowded buckets among sparse ones: each series alone
        mark = np.zeros(visible.shape, dtype=bool)
        for row, kept in zip(mark, visible):
            row[m4_indices(xs, kept, lo, hi, width)] = True
    # every row's kept points, read at once from the filled rows (index arrays: a bool
    # mask over the whole block reads several times slower)
    rows, shown = mark.shape
    found = np.flatnonzero(mark)
    counts = np.diff(found.searchsorted(np.arange(rows + 1) * shown))
    positions = found - np.repeat(np.arange(rows) * shown, counts)
    at = found if shown == ys.shape[1] else \
        positions + np.repeat(np.arange(rows) * ys.shape[1] + (part.start or 0), counts)
    y_kept = np.take(ys.reshape(-1), at).astype(np.float64)
    if centres is not None:
        y_kept += np.repeat(centres, counts)
    return xs[positions], y_kept, group.steps[part][positions], counts


def _cache_key(ref: SeriesRef, req: SeriesRequest, width: int, lo, hi) -> tuple:
    return (ref.run_hash, ref.name, ref.context_key, ref.count, ref.last_step,
            ref.last_time, req.x_axis, width, lo, hi, req.smoothing_key)


def _smoothed(loaded: list[SeriesData], req: SeriesRequest) -> list[SeriesData]:
    """The series with their y smoothed (EMA or CMA, in step order) at full resolution."""
    if not req.smoothed:
        return loaded
    out = []
    for d in loaded:
        if req.align_metric and len(d.step) > 1:
            # x is another metric's value, not in step order: smooth along the steps
            order = np.argsort(d.step, kind='stable')
            y = np.empty_like(d.y)
            y[order] = smooth(d.y[order], req.smoothing_kind, req.smoothing, req.window)
        else:
            y = smooth(d.y, req.smoothing_kind, req.smoothing, req.window)
        out.append(SeriesData(d.ref, d.x, y, d.step))
    return out


def _align_refs(repo, refs: list[SeriesRef], name: str) -> dict:
    """For each (run, context) of ``refs``, the ref of the run's ``name`` series to align
    on: the one with the same context, else the context-less one, else the run's first."""
    by_run: dict[str, dict[str, SeriesRef]] = {}
    for run_hash, mname, context, count, first, last, last_time, series_id in _summary_rows(
            repo, sorted({r.run_hash for r in refs}), [name]):
        by_run.setdefault(run_hash, {})[context] = SeriesRef(
            run_hash, mname, _context(context), None, count, first, last, last_time,
            series_id)
    chosen = {}
    for r in refs:
        options = by_run.get(r.run_hash)
        if not options:
            continue
        pick = options.get(r.context_key) or options.get(canonical_context({})) or \
            options[sorted(options)[0]]
        chosen[(r.run_hash, r.context_key)] = pick
    return chosen


def _aligned(repo, loaded: list[SeriesData], name: str) -> list[SeriesData]:
    """The series with x the value of the run's metric ``name`` at the same step; points
    at steps where that metric has no finite value are left out; x ascending."""
    chosen = _align_refs(repo, [d.ref for d in loaded], name)
    wanted = list({id(r): r for r in chosen.values()}.values())
    axes = {id(r): d for r, d in zip(wanted, _load_all(repo, wanted, 'step', None))}
    out = []
    for d in loaded:
        ref = chosen.get((d.ref.run_hash, d.ref.context_key))
        axis = axes.get(id(ref)) if ref is not None else None
        if axis is None or not len(axis.step) or not len(d.step):
            empty = np.empty(0)
            out.append(SeriesData(d.ref, empty, empty, empty))
            continue
        # the axis' steps ascend (on_axis sorts by x = step); the last point of a step wins
        a_steps = axis.step.astype(np.int64)
        at = np.searchsorted(a_steps, d.step.astype(np.int64), side='right') - 1
        ok = at >= 0
        ok[ok] = a_steps[at[ok]] == d.step.astype(np.int64)[ok]
        x = np.full(len(d.step), np.nan)
        x[ok] = axis.y[at[ok]]
        keep = np.isfinite(x)
        x, y, step = x[keep], d.y[keep], d.step[keep]
        if len(x) > 1 and np.any(x[1:] < x[:-1]):
            order = np.argsort(x, kind='stable')
            x, y, step = x[order], y[order], step[order]
        out.append(SeriesData(d.ref, x, y, step))
    return out


def _load_view(repo, refs: list[SeriesRef], req: SeriesRequest,
               zoom: tuple[int, int] | None) -> list[SeriesData]:
    """Full-resolution points of ``refs`` on the request's x axis, smoothed."""
    name = req.align_metric
    if name is None:
        return _smoothed(_load_all(repo, refs, req.x_axis, req.since, zoom), req)
    loaded = _load_all(repo, refs, 'step', req.since, None)
    if req.smoothed:  # smooth in step order, before the points are re-ordered by x
        loaded = _smoothed(loaded, SeriesRequest(smoothing=req.smoothing,
                                                 smoothing_kind=req.smoothing_kind,
                                                 window=req.window))
    return _aligned(repo, loaded, name)


LOAD_BATCH = 1000  # series read and reduced together: bounds the memory of a large answer


def fetch_series(repo, req: SeriesRequest, cache: ReducedCache | None = None,
                 answered=None, queries=None) -> dict:
    """Select, load and reduce. Returns ``{'series': [SeriesData...], 'total', 'range',
    'until', 'body_key'}`` where ``range`` is the x range the buckets were laid over and
    ``body_key`` identifies the reduced arrays exactly (None when not cacheable).

    ``answered(body_key)`` may return the point counts of an identical answer the caller
    still holds encoded; nothing is read or reduced then, the series come back without
    points and the counts under ``'counts'``. ``queries`` as in :func:`select_series`."""
    req.check()
    width = clamp_width(req.width)
    refs, total = select_series(repo, req, queries)
    if req.since is not None:
        refs = [r for r in refs if r.last_time is None or r.last_time > req.since]
    known_range = None
    if req.x_axis == 'step' and req.since is None:
        known_range = _step_range(refs)
    cacheable = cache is not None and known_range is not None and not req.full
    lo = req.x_min if req.x_min is not None else (known_range[0] if known_range else None)
    hi = req.x_max if req.x_max is not None else (known_range[1] if known_range else None)
    # The next live poll asks for points after the *oldest* last write among the series: a
    # run whose flush lags behind another's still gets its late points (clients drop the
    # repeats by step).
    until = min([r.last_time for r in refs if r.last_time is not None], default=req.since)
    # Identifies the reduced arrays exactly (every input of the reduction), so an encoder
    # may reuse what it made of them; None when the answer is not cacheable.
    body_key = None
    if cacheable and all(r.count is not None for r in refs):
        body_key = (req.x_axis, width, lo, hi, req.smoothing_key, tuple(
            (r.run_hash, r.name, r.context_key, r.count, r.last_step, r.last_time)
            for r in refs))
    answer = {'total': total, 'range': [lo, hi], 'width': width, 'until': until,
              'body_key': body_key, 'smoothing': req.smoothing if req.smoothed else 0.0,
              'smoothing_kind': req.smoothing_kind if req.smoothed else None,
              'window': (req.window | 1) if req.smoothed and req.smoothing_kind == 'cma'
              else None}
    counts = answered(body_key) if answered is not None and body_key is not None else None
    if counts is not None and len(counts) == len(refs):
        empty = np.empty(0)
        return dict(answer, series=[SeriesData(r, empty, empty, empty) for r in refs],
                    counts=counts)
    out: list[SeriesData | None] = [None] * len(refs)
    pending: list[int] = []
    for i, ref in enumerate(refs):
        if cacheable and cache is not None and ref.count is not None:
            hit = cache.get(_cache_key(ref, req, width, lo, hi))
            if hit is not None:
                out[i] = SeriesData(ref, *hit)
                continue
        pending.append(i)
    # An EMA point depends on every point before it, so smoothing reads series from
    # their start (up to a zoomed range's end; a centred average: to their end too) and
    # not from the stored overviews.
    zoom = _zoom_steps(req)
    if zoom is not None and req.smoothed:
        zoom = (-(2 ** 62), zoom[1] if req.smoothing_kind == 'ema' else 2 ** 62)
    if lo is not None and hi is not None:
        # the buckets are known before reading: read and reduce a batch at a time
        for b in range(0, len(pending), LOAD_BATCH):
            batch = pending[b:b + LOAD_BATCH]
            # long evenly spaced series: from the stored overviews, without their points
            # (not cached: reading them again costs less than the memory a cache holds)
            if not req.smoothed:
                for i, reduced in reduce_from_overviews(repo, {i: refs[i] for i in batch},
                                                        req, lo, hi, width).items():
                    out[i] = SeriesData(refs[i], *reduced)
            batch = [i for i in batch if out[i] is None]
            if _matrix_fits(req, [refs[i] for i in batch]):
                # sweeps: series sharing their steps read, smoothed and reduced as a matrix
                rest = _load_reduce_matrix(repo, {i: refs[i] for i in batch}, req, zoom, lo,
                                           hi, width, out)
                batch = list(rest)
                loaded = _smoothed([rest[i] for i in batch], req)
            else:
                loaded = _load_view(repo, [refs[i] for i in batch], req, zoom)
            _reduce(dict(zip(batch, loaded)), out, req, lo, hi, width,
                    cache if cacheable else None)
    else:
        loaded_all = dict(zip(pending, _load_view(repo, [refs[i] for i in pending], req,
                                                  zoom)))
        xs = [d.x for d in loaded_all.values() if len(d.x)]
        lo = lo if lo is not None else (min(float(x[0]) for x in xs) if xs else 0.0)
        hi = hi if hi is not None else (max(float(x[-1]) for x in xs) if xs else 0.0)
        _reduce(loaded_all, out, req, lo, hi, width, cache if cacheable else None)
        answer['range'] = [lo, hi]
    return dict(answer, series=out)
