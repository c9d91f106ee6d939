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
from dataclasses import dataclass, field
from typing import Any

from aim.errors import RunLockedError
from aim.mlflow_api.errors import MlflowApiError

NO_EPOCH = -(2 ** 63)


@dataclass
class _StreamState:
    name: str
    ops: int = -1      # next operation number; -1: not read from the repository yet
    pos: int = 0       # next journal record position (segment 0)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RunWriter:
    """Applies operations and points to runs of one repository, a stream per run."""

    def __init__(self, store_getter):
        self._store = store_getter
        self._states: dict[str, _StreamState] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, run_hash: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(run_hash)
            if lock is None:
                lock = self._locks[run_hash] = threading.Lock()
            return lock

    def lock(self, run_hash: str) -> threading.Lock:
        """Held around a read-check-write of one run (param changes are checked first)."""
        return self._lock(run_hash)

    def apply(self, run_hash: str, ops: list[dict[str, Any]],
              points: list[tuple[str, int, float, float]] | None = None,
              writer: str | None = None) -> None:
        """``ops``: operations as aim.remote.ingest takes them (without ``seq``);
        ``points``: (metric key, step, value, time in seconds). Call with ``lock(run)``
        held, or not: the stream's own lock is taken here."""
        from aim.remote.ingest import apply_batch, stream_mark
        store = self._store()
        with self._guard:
            state = self._states.get(run_hash)
            if state is None:
                state = self._states[run_hash] = _StreamState(f'mlflow-{os.getpid()}-{run_hash}')
        header: dict[str, Any] = {'stream': state.name, 'run': run_hash}
        with state.lock:
            if state.ops < 0:
                mark = stream_mark(store.db, state.name)
                state.ops = mark['ops']
                state.pos = mark['pos'] if mark['seg'] == 0 else 0
            seq_ops = [{**op, 'seq': state.ops + i} for i, op in enumerate(ops)]
            header['ops'] = seq_ops
            records = None
            if points:
                records, series = _records(points)
                header['series'] = series
                header['ranges'] = [[0, state.pos, state.pos + len(points)]]
            else:
                header['ranges'] = []
            try:
                mark = apply_batch(store, header, records, writer=writer)
            except RunLockedError as e:
                raise MlflowApiError(f'Run {run_hash} is being written by another process '
                                     f'({e}); try again once it has closed the run.',
                                     'INVALID_STATE') from None
            state.ops = mark['ops']
            state.pos = mark['pos']


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
