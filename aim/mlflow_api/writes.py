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


def _records(points: list[tuple[str, int, float, float]]):
    import numpy as np
    ids: dict[str, int] = {}
    code = np.empty(len(points), np.int32)
    for i, p in enumerate(points):
        local = ids.get(p[0])
        if local is None:
            local = ids[p[0]] = len(ids)
        code[i] = local << 1          # the low bit 0: a float value
    step = np.fromiter((p[1] for p in points), np.int64, len(points))
    fvalue = np.fromiter((p[2] for p in points), np.float64, len(points))
    time = np.fromiter((p[3] for p in points), np.float64, len(points))
    epoch = np.full(len(points), NO_EPOCH, np.int64)
    series = {str(i): [key, '{}'] for key, i in ids.items()}
    return (code, step, fvalue.view(np.int64), fvalue, epoch, time), series


def param_op(path: list[str], value: Any) -> dict:
    from aim.storage.encoding import dumps_params
    return {'op': 'param', 'path': path, 'value': dumps_params(value)}


def param_del_op(path: list[str]) -> dict:
    return {'op': 'param_del', 'path': path}


def props_op(**props) -> dict:
    return {'op': 'props', 'props': props}
