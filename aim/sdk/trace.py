"""Metric/Trace: one series of a run, identified by (name, context).

Summary attributes (count, last, min, ...) come from the index without reading points;
``values``, ``steps``, ``epochs`` and ``timestamps`` read the columnar chunks once, with
numpy, in step order.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from aim.storage.context import Context
from aim.storage.encoding import canonical_context

if TYPE_CHECKING:
    from aim.sdk.run import Run

NO_EPOCH = -(2 ** 63)


class ArrayView:
    """Aim's ``ArrayView`` calls over a column keyed by step; subclasses give ``_keyed()``
    -> (steps, column) numpy arrays in step order."""

    def _keyed(self):
        raise NotImplementedError

    def values_numpy(self):
        return self._keyed()[1]

    def values_list(self) -> list:
        return self._keyed()[1].tolist()

    def indices_numpy(self):
        return self._keyed()[0]

    def indices_list(self) -> list:
        return self._keyed()[0].tolist()

    keys = indices = indices_list

    def values(self) -> list:
        return self.values_list()

    def sparse_numpy(self):
        steps, column = self._keyed()
        return steps, column

    def sparse_list(self):
        steps, column = self._keyed()
        return steps.tolist(), column.tolist()

    def items(self) -> list[tuple[int, Any]]:
        return list(zip(*self.sparse_list()))

    def tolist(self) -> list:
        return self.values_list()

    def first(self):
        steps, column = self._keyed()
        return (int(steps[0]), column[0].item()) if len(steps) else None

    def last(self):
        steps, column = self._keyed()
        return (int(steps[-1]), column[-1].item()) if len(steps) else None

    def first_value(self):
        first = self.first()
        return first[1] if first else None

    def last_value(self):
        last = self.last()
        return last[1] if last else None

    def first_idx(self):
        first = self.first()
        return first[0] if first else None

    def last_idx(self):
        last = self.last()
        return last[0] if last else None


class Values(ArrayView):
    """The values of a series keyed by step."""

    def __init__(self, trace: Metric):
        self._trace = trace

    def _keyed(self):
        steps, values = self._trace._load(('steps', 'values'))[:2]
        return steps, values

    def __getitem__(self, step: int):
        if isinstance(step, slice):
            raise TypeError('metric.values[...] takes one step; for a range of steps use '
                            'metric.data.range(start, stop)')
        steps, values = self._keyed()
        i = steps.searchsorted(step)
        if i < len(steps) and steps[i] == step:
            return values[i].item()
        raise KeyError(f'no value at step {step}')

    def __len__(self) -> int:
        return len(self._keyed()[0])

    def __iter__(self):
        return iter(self.values_list())


class SequenceData:
    """Aim 3.x's ``metric.data``: (steps, [values, epochs, timestamps])."""

    def __init__(self, trace: Metric):
        self._trace = trace

    def numpy(self):
        t = self._trace
        return t.steps, [t.values.values_numpy(), t.epochs, t.timestamps]

    def items_list(self):
        steps, cols = self.numpy()
        return steps.tolist(), [c.tolist() for c in cols]

    def values_list(self):
        return self._trace.values.values_list()

    def indices_list(self):
        return self._trace.values.indices_list()

    def sample(self, k: int):
        """Up to k points spread evenly over the series, always including the last."""
        steps, cols = self.numpy()
        if len(steps) > k > 0:
            idx = np.unique(np.linspace(0, len(steps) - 1, k).round().astype(int))
            return steps[idx], [c[idx] for c in cols]
        return steps, cols

    def range(self, start: int, stop: int):
        steps, values, epochs, times = self._trace._run._read_series(
            self._trace, start, stop - 1)
        return steps, [values, self._trace._epochs_out(epochs), times]


class Metric:
    """A series of numbers tracked under one (name, context) of a run."""

    def __init__(self, run: Run, name: str, context: dict | None,
                 summary: dict | None = None):
        self._run = run
        self.name = name
        self.context = context if isinstance(context, Context) else Context(context or {})
        self._summary = summary
        self._cache = None

    @property
    def values(self) -> Values:
        return Values(self)

    @property
    def data(self) -> SequenceData:
        return SequenceData(self)

    # identity -------------------------------------------------------------------------
    @property
    def run(self) -> Run:
        return self._run

    @property
    def context_json(self) -> str:
        return canonical_context(self.context)

    def __repr__(self) -> str:
        return f'<Metric {self.name!r} {self.context} of run {self._run.hash}>'

    def __eq__(self, other) -> bool:
        return isinstance(other, Metric) and (self._run.hash, self.name, self.context_json) == (
            other._run.hash, other.name, other.context_json)

    def __hash__(self) -> int:
        return hash((self._run.hash, self.name, self.context_json))

    # summary (no point reads) ---------------------------------------------------------
    def _summary_row(self) -> dict:
        if self._summary is None:
            self._summary = self._run._series_summary(self.name, self.context_json) or {}
        return self._summary

    @property
    def count(self) -> int:
        return self._summary_row().get('count') or 0

    @property
    def first_step(self):
        return _step_value(self._summary_row().get('first_step'))

    @property
    def last_step(self):
        return _step_value(self._summary_row().get('last_step'))

    @property
    def last_value(self):
        return self._summary_row().get('last')

    @property
    def min(self):
        return self._summary_row().get('min')

    @property
    def max(self):
        return self._summary_row().get('max')

    # points ---------------------------------------------------------------------------
    def _load(self, columns=('steps', 'values', 'epochs', 'times')):
        """(steps, values, epochs, times); columns not asked for may be None."""
        cache = self._cache or (None, None, None, None)
        names = ('steps', 'values', 'epochs', 'times')
        if any(cache[names.index(c)] is None for c in columns):
            # decode what is asked together with what was decoded before, so that every
            # cached column comes from the same read (a live series grows between reads)
            keep = {c for c, a in zip(names, cache) if a is not None} | set(columns)
            self._cache = self._run._read_series(self, columns=keep)
        return self._cache

    def preload(self) -> None:
        self._load()

    def reload(self) -> None:
        self._cache = None
        self._summary = None

    def __len__(self) -> int:
        return len(self._load(('steps',))[0])

    def __bool__(self) -> bool:
        return True

    @property
    def steps(self):
        return self._load(('steps',))[0]

    @property
    def epochs(self):
        steps, _, epochs, _ = self._load(('steps', 'epochs'))
        return _column(steps, self._epochs_out(epochs))

    @staticmethod
    def _epochs_out(epochs):
        missing = epochs == NO_EPOCH
        if missing.any():
            out = epochs.astype(np.float64)
            out[missing] = np.nan
            return out
        return epochs

    @property
    def timestamps(self):
        steps, _, _, times = self._load(('steps', 'times'))
        return _column(steps, times)

    def values_numpy(self):
        return self._load(('steps', 'values'))[1]

    def values_list(self) -> list:
        return self.values_numpy().tolist()

    def sparse_numpy(self):
        return self.values.sparse_numpy()

    def last(self):
        """(step, value) of the last point, or None for an empty series."""
        return self.values.last()

    def first(self):
        return self.values.first()

    def dataframe(self, include_run: bool = False, include_name: bool = False,
                  include_context: bool = False, include_params: bool = False,
                  only_last: bool = False):
        """The points as a pandas DataFrame (pandas is an optional dependency)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError('Metric.dataframe() needs pandas: pip install "aimkit[pandas]"') \
                from None
        steps, values, epochs, times = self._load()
        epochs = self._epochs_out(epochs)
        if only_last and len(steps):
            steps, values, epochs, times = steps[-1:], values[-1:], epochs[-1:], times[-1:]
        df = pd.DataFrame({'step': steps, 'value': values, 'epoch': epochs,
                           'time': pd.to_datetime(times, unit='s')})
        df.insert(0, 'idx', range(len(df)))
        if include_run:
            df['run.hash'] = self._run.hash
        if include_params:
            for key, val in _flatten(self._run.get(..., {}) or {}, 'run').items():
                df[key] = val
        if include_name:
            df['metric.name'] = self.name
        if include_context:
            for key, val in _flatten(self.context, 'metric.context').items():
                df[key] = val
        return df


class SeriesColumn(ArrayView, np.ndarray):
    """The epochs or timestamps of a series: a numpy array that also answers Aim's
    ArrayView calls (``values_list()``, ``sparse_numpy()``, ``last()``, ...)."""

    _steps = None

    def __array_finalize__(self, obj):
        self._steps = getattr(obj, '_steps', None)

    def _keyed(self):
        steps = self._steps if self._steps is not None else np.arange(len(self))
        return steps, np.asarray(self)

    def values(self) -> list:
        return self.values_list()


def _column(steps, array) -> SeriesColumn:
    col = array.view(SeriesColumn)
    col._steps = steps
    return col


class _StepValue(int):
    """An int that may also be called: Aim 3.x spells ``metric.last_step()`` as a method,
    its query language ``metric.last_step`` as a value; both work."""

    def __call__(self) -> int:
        return int(self)


def _step_value(v):
    return None if v is None else _StepValue(v)


def _flatten(tree: dict, prefix: str, depth: int = 3) -> dict:
    out = {}
    for k, v in tree.items():
        key = f'{prefix}.{k}'
        if isinstance(v, dict) and depth > 1:
            out.update(_flatten(v, key, depth - 1))
        elif isinstance(v, (dict, list)):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


Trace = Metric
