"""Full-resolution export of a query's series as CSV or JSON lines, streamed."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from aim.web.json_response import replace_nonfinite
from aim.web.series_source import SeriesRequest, _as_float, _metric_of, select_series

EXPORT_COLUMNS = ('run_hash', 'run_name', 'metric', 'context', 'step', 'epoch', 'timestamp',
                  'value')


def _points(repo, req: SeriesRequest, queries=None) -> Iterator[tuple[Any, Any, tuple]]:
    # Selecting first (not lazily) makes query errors surface before the response starts.
    refs, _ = select_series(repo, req, queries)
    return _read_points(repo, refs)


def _read_points(repo, refs) -> Iterator[tuple[Any, Any, tuple]]:
    names = dict(repo.index.query(
        'SELECT hash, name FROM runs WHERE hash IN (SELECT value FROM json_each(?))',
        [json.dumps(sorted({r.run_hash for r in refs}))]))
    runs_cache: dict = {}
    for ref in refs:
        metric = _metric_of(repo, ref, runs_cache)
        if metric is None:
            continue
        steps, values = metric.values.sparse_numpy()
        epochs = _as_float(metric.epochs)
        times = _as_float(metric.timestamps)
        yield ref, names.get(ref.run_hash), (np.asarray(steps), np.asarray(values), epochs,
                                             times)


def _epoch(v: float):
    return None if not np.isfinite(v) or v < -9e18 else int(v)


def export_csv(repo, req: SeriesRequest, queries=None) -> Iterator[str]:
    return _csv_lines(_points(repo, req, queries))


def _csv_lines(points) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)
    yield buf.getvalue()
    for ref, run_name, (steps, values, epochs, times) in points:
        buf.seek(0)
        buf.truncate()
        ctx = json.dumps(ref.context, sort_keys=True)
        for i in range(len(steps)):
            epoch = _epoch(epochs[i]) if i < len(epochs) else None
            writer.writerow((ref.run_hash, run_name, ref.name, ctx, int(steps[i]),
                             '' if epoch is None else epoch,
                             repr(float(times[i])) if i < len(times) else '',
                             repr(values[i].item())))
        yield buf.getvalue()


def export_json_lines(repo, req: SeriesRequest, queries=None) -> Iterator[str]:
    """One JSON object per series and line: run, metric, context and the point arrays."""
    return _json_lines(_points(repo, req, queries))


def _json_lines(points) -> Iterator[str]:
    for ref, run_name, (steps, values, epochs, times) in points:
        record = {'run_hash': ref.run_hash, 'run_name': run_name, 'metric': ref.name,
                  'context': ref.context, 'steps': steps.tolist(), 'values': values.tolist(),
                  'epochs': [_epoch(v) for v in epochs], 'timestamps': times.tolist()}
        yield json.dumps(replace_nonfinite(record), ensure_ascii=False, allow_nan=False) + '\n'
