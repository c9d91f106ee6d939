"""MLflow writes go in as the server's own batches (aim.remote.ingest.apply_batch).

Each server process writes an MLflow run as one *stream* of its own
(``mlflow-<pid>-<run>``): props, params and the close are the stream's numbered
operations, metric points its journal records. So an MLflow write takes the same path
and the same run lock as a write from ``Run(repo='aim://...')``: it waits for a batch of
another writer of the same run, is refused while a local process holds the run, and is
recorded in ``remote_streams`` like any client's.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from aim.errors import RunLockedError
from aim.mlflow_api.errors import MlflowApiError

NO_EPOCH = -(2 ** 63)
# MLflow keeps every value logged at a step (``log_metric`` without ``step=`` logs them all
# at step 0); an aimkit series keeps one. A value that a later one at the same step
# replaces moves to the metric's series with this context, in the order it was replaced:
# its step there counts the replaced values (0, 1, ...), its epoch is its MLflow step.
# ``get_metric_history`` gives both series merged, as MLflow would.
REPEATED_CONTEXT = {'mlflow': 'replaced'}
REPEATED_JSON = '{"mlflow":"replaced"}'


LOCK_STRIPES = 256


class RunWriter:
    """Applies operations and points to runs of one repository, a stream per run and
    server process. Nothing is kept per run: each write reads its stream's mark (one
    small query), under one of a fixed set of locks, so that a process serving a million
    runs holds no state for them."""

    def __init__(self, store_getter):
        self._store = store_getter
        self._locks = [threading.RLock() for _ in range(LOCK_STRIPES)]

    def lock(self, run_hash: str) -> threading.RLock:
        """The run's lock in this process, held around a read-check-write of one run
        (param changes are checked first) and around each write."""
        return self._locks[hash(run_hash) % LOCK_STRIPES]

    def apply(self, run_hash: str, ops: list[dict[str, Any]],
              points: list[tuple[str, int, float, float]] | None = None,
              writer: str | None = None) -> None:
        """``ops``: operations as aim.remote.ingest takes them (without ``seq``);
        ``points``: (metric key, step, value, time in seconds)."""
        from aim.remote.ingest import apply_batch, stream_mark
        store = self._store()
        stream = f'mlflow-{os.getpid()}-{run_hash}'
        header: dict[str, Any] = {'stream': stream, 'run': run_hash}
        with self.lock(run_hash):
            mark = stream_mark(store.db, stream)
            pos = mark['pos'] if mark['seg'] == 0 else 0
            header['ops'] = [{**op, 'seq': mark['ops'] + i} for i, op in enumerate(ops)]
            records = None
            if points:
                points = _keep_replaced(store, run_hash, points)
                records, series = _records(points)
                header['series'] = series
                header['ranges'] = [[0, pos, pos + len(points)]]
            else:
                header['ranges'] = []
            try:
                apply_batch(store, header, records, writer=writer)
            except RunLockedError as e:
                raise MlflowApiError(f'Run {run_hash} is being written by another process '
                                     f'({e}); try again once it has closed the run.',
                                     'INVALID_STATE') from None


def _keep_replaced(store, run_hash: str, points: list[tuple]) -> list[tuple]:
    """``points`` and, for each one that replaces a value at a step of its metric, that
    value, moved to the metric's REPEATED_CONTEXT series (a point of six fields: key,
    step, value, time, context JSON, epoch). Reads only the run's series summaries,
    unless a value is logged at a step before its metric's last one."""
    import math
    keys = {p[0] for p in points}
    last: dict[str, list] = {}        # key -> [last step, value there, its time]
    replaced_next: dict[str, int] = {}
    for name, context, last_step, value, last_time in store.db.query(
            'SELECT name, context, last_step, last, last_time FROM series '
            'WHERE run_hash=? AND context IN (?, ?)', (run_hash, '{}', REPEATED_JSON)):
        if name not in keys:
            continue
        if context == '{}':
            if last_step is not None:
                last[name] = [last_step, math.nan if value is None else value, last_time]
        else:
            replaced_next[name] = -1 if last_step is None else last_step
    if not _replaces_any(points, last):
        return points
    earlier: dict[tuple[str, int], tuple[float, float]] = {}   # this batch's values
    out: list[tuple] = []
    for p in points:
        key, step, value, t = p[0], p[1], p[2], p[3]
        old: tuple[float, float] | None = earlier.get((key, step))
        if old is None:
            known = last.get(key)
            if known is not None and step == known[0]:
                old = (known[1], known[2])
            elif known is not None and step < known[0]:
                old = _stored_value(store, run_hash, key, step)
        if old is not None:
            n = replaced_next.get(key, -1) + 1
            replaced_next[key] = n
            out.append((key, n, old[0], old[1], REPEATED_JSON, step))
        earlier[(key, step)] = (value, t)
        out.append(p)
    return out


def _replaces_any(points: list[tuple], last: dict[str, list]) -> bool:
    """Whether a point falls on a step its metric holds already (stored, or earlier in
    the batch): sorted in C, so that the usual batch (new steps only) costs no loop."""
    import numpy as np
    n = len(points)
    ids: dict[str, int] = {}
    code = np.fromiter((ids.setdefault(p[0], len(ids)) for p in points), np.int64, n)
    step = np.fromiter((p[1] for p in points), np.int64, n)
    if last:
        floor = np.array([last[k][0] if k in last else -2 ** 63 for k in ids], np.int64)
        if bool((step <= floor[code]).any()):
            return True
    order = np.lexsort((step, code))
    code, step = code[order], step[order]
    return bool(((code[1:] == code[:-1]) & (step[1:] == step[:-1])).any())


def _stored_value(store, run_hash: str, key: str, step: int) -> tuple[float, float] | None:
    steps, values, _, times = store.run_data(run_hash).read_series_by_key(key, '{}', step, step)
    for i in range(len(steps)):
        if int(steps[i]) == step:
            return float(values[i]), float(times[i])
    return None


def _records(points: list[tuple]):
    """Journal records of points: (key, step, value, time) in the metric's series, or
    (key, step, value, time, context JSON, epoch)."""
    import numpy as np
    ids: dict[tuple[str, str], int] = {}
    code = np.empty(len(points), np.int32)
    epoch = np.full(len(points), NO_EPOCH, np.int64)
    for i, p in enumerate(points):
        series_key = (p[0], p[4] if len(p) > 4 else '{}')
        local = ids.get(series_key)
        if local is None:
            local = ids[series_key] = len(ids)
        code[i] = local << 1          # the low bit 0: a float value
        if len(p) > 4:
            epoch[i] = p[5]
    step = np.fromiter((p[1] for p in points), np.int64, len(points))
    fvalue = np.fromiter((p[2] for p in points), np.float64, len(points))
    time = np.fromiter((p[3] for p in points), np.float64, len(points))
    series = {str(i): [key, context] for (key, context), i in ids.items()}
    return (code, step, fvalue.view(np.int64), fvalue, epoch, time), series


def param_op(path: list[str], value: Any) -> dict:
    from aim.storage.encoding import dumps_params
    return {'op': 'param', 'path': path, 'value': dumps_params(value)}


def param_del_op(path: list[str]) -> dict:
    return {'op': 'param_del', 'path': path}


def props_op(**props) -> dict:
    return {'op': 'props', 'props': props}
