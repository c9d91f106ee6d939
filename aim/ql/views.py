"""What the names of a query stand for: `run`, `metric` / `trace`, `context`.

Views are built from index rows (aim.ql.source); they decode params and open series
values only when the query reads them.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import time

from aim.errors import AimError, RunError
from aim.ql import functions
from aim.ql.evaluate import QueryObject, Unsupported, get_item, plain
from aim.ql.undefined import UNDEFINED, Undefined

RUN_COLUMNS = ('hash', 'name', 'experiment', 'description', 'tags', 'archived',
               'creation_time', 'end_time', 'updated_at', 'params')
SERIES_COLUMNS = ('name', 'context', 'count', 'first_step', 'last_step', 'last', 'min',
                  'max', 'last_time')

RUN_PROPS = frozenset({'hash', 'name', 'experiment', 'description', 'tags', 'archived',
                       'active', 'creation_time', 'created_at', 'end_time', 'finalized_at',
                       'updated_at', 'duration', 'metrics'})
METRIC_SUMMARY_ATTRIBUTES = frozenset({'last', 'min', 'max', 'count', 'first_step',
                                       'last_step'})

_SPECIAL_FLOATS = {'nan': math.nan, 'inf': math.inf, '-inf': -math.inf}


def _decode_special(obj: dict):
    if len(obj) == 1 and '$float' in obj and obj['$float'] in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[obj['$float']]
    return obj


_DECODER = json.JSONDecoder(object_hook=_decode_special)


def decode_json(text: str | None, default=None):
    """JSON as the index stores it (non-finite floats as {"$float": ...})."""
    if text is None:
        return default
    return _DECODER.decode(text)


_CONTEXTS: dict[str, dict] = {}


def decode_context(text: str | None) -> dict:
    """A series context, decoded once per distinct text (a repository has few of them).

    Callers must not modify the dict they get (Metric copies it; queries cannot mutate)."""
    if text is None:
        return {}
    context = _CONTEXTS.get(text)
    if context is None:
        context = decode_json(text, {}) or {}
        if len(_CONTEXTS) < 10_000:
            _CONTEXTS[text] = context
    return context


def _timestamp_to_datetime(ts):
    if ts is None:
        return None
    # Naive local time, so that comparisons with datetime.now() mean what they say.
    return _dt.datetime.fromtimestamp(ts)



def metric_key(key) -> tuple[str, dict] | None:
    """(name, context) of a ``run.metrics[...]`` key — ``'loss'`` or ``('loss', {...})`` —
    or None for any other key."""
    if isinstance(key, str):
        return key, {}
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str) \
            and isinstance(key[1], (dict, type(None))):
        return key[0], key[1] or {}
    return None

class RunView(QueryObject):
    """`run` in a query: props by attribute, params by attribute or item."""
    __slots__ = ('_metrics', '_params', '_tags', 'row', 'source')
    ql_describe = 'run'

    def __init__(self, row: tuple, source):
        self.row = row
        self.source = source
        self._params: dict | None = None
        self._tags: list | None = None
        self._metrics: MetricsLookup | None = None

    @property
    def hash(self) -> str:
        return self.row[0]

    @property
    def params(self) -> dict:
        if self._params is None:
            try:
                self._params = decode_json(self.row[9], {}) or {}
            except (ValueError, RecursionError):
                # damaged params text: queries that read params skip the run in SQL
                # (pushdown.translate); read here, it has none
                self._params = {}
        return self._params

    def prop(self, name: str):
        row = self.row
        if name == 'hash':
            return row[0]
        if name in ('name', 'experiment', 'description'):
            return row[RUN_COLUMNS.index(name)]
        if name == 'tags':
            if self._tags is None:
                self._tags = decode_json(row[4], []) or []
            return self._tags
        if name == 'archived':
            return bool(row[5])
        if name in ('creation_time', 'end_time', 'updated_at'):
            return row[RUN_COLUMNS.index(name)]
        if name == 'created_at':
            return _timestamp_to_datetime(row[6])
        if name == 'finalized_at':
            return _timestamp_to_datetime(row[7])
        if name == 'active':
            return self.source.is_active(row)
        if name == 'duration':
            start = row[6]
            if start is None:
                return None
            end = row[7]
            if end is None:
                end = time.time() if self.source.is_active(row) else (row[8] or time.time())
            return end - start
        if name == 'metrics':
            if self._metrics is None:
                self._metrics = MetricsLookup(self)
            return self._metrics
        return UNDEFINED

    def ql_getattr(self, name: str):
        if name in RUN_PROPS:
            return self.prop(name)
        return self.params.get(name, UNDEFINED)

    def ql_getitem(self, key):
        key = plain(key)
        if isinstance(key, tuple):
            value = self.params
            for part in key:
                value = get_item(value, part)
            return value
        if isinstance(key, str):
            return self.params.get(key, UNDEFINED)
        return UNDEFINED

    def ql_value(self):
        return self

    def ql_iter(self):
        raise Unsupported('run cannot be iterated',
                          "Test for a param with run.lr is not None or 'lr' in run.hparams; "
                          'iterate over run.metrics or run.tags.')

    def __repr__(self):
        return f'<run {self.hash}>'


class MetricsLookup(QueryObject):
    """`run.metrics['loss']` / `run.metrics['loss', {'subset': 'val'}]`: series summaries.

    Also a sequence of the run's series: `len(run.metrics)`, `for m in run.metrics`,
    `'loss' in run.metrics` (by name)."""
    __slots__ = ('_series', 'run')
    ql_describe = 'run.metrics'

    def __init__(self, run: RunView):
        self.run = run
        self._series: list[tuple] | None = None

    def series(self) -> list[tuple]:
        if self._series is None:
            self._series = self.run.source.run_series(self.run.hash)
        return self._series

    def ql_getitem(self, key):
        named = metric_key(plain(key))
        if named is None:
            raise Unsupported(f'run.metrics[...] takes a series name or (name, context), '
                              f'not {type(plain(key)).__name__}',
                              "Write run.metrics['loss'] or "
                              "run.metrics['loss', {'subset': 'val'}].")
        name, context = named
        wanted = canonical_context(context)
        for row in self.series():
            if row[0] == name and canonical_context(decode_context(row[1])) == wanted:
                return MetricView(row, self.run)
        return UNDEFINED

    def ql_iter(self):
        return iter([MetricView(row, self.run) for row in self.series()])

    def ql_getattr(self, name: str):
        raise Unsupported(f'run.metrics has no attribute {name!r}',
                          f"Select a series with an item: run.metrics[{name!r}].")

    def __len__(self) -> int:
        return len(self.series())

    def __iter__(self):
        return self.ql_iter()


def canonical_context(context) -> str:
    return json.dumps(context, sort_keys=True, separators=(',', ':'), default=str)


class MetricView(QueryObject):
    """`metric` / `trace` in a query: name, context, run and the series summary.

    Compared with a string, a metric compares its name (`metric == 'loss'`).
    """
    __slots__ = ('_context', '_values', 'row', 'run')
    ql_describe = 'metric'
    ql_attributes = ('name', 'context', 'run', 'values', 'first',
                     *sorted(METRIC_SUMMARY_ATTRIBUTES))
    ql_methods = ('values_between', 'last_n')

    def __init__(self, row: tuple, run: RunView):
        self.row = row
        self.run = run
        self._context: dict | None = None
        self._values: SeriesValues | None = None

    @property
    def name(self) -> str:
        return self.row[0]

    @property
    def context(self) -> dict:
        if self._context is None:
            self._context = decode_context(self.row[1])
        return self._context

    def summary(self, name: str):
        value = self.row[SERIES_COLUMNS.index(name)]
        if value is None and name in ('last', 'min', 'max'):
            return math.nan      # the index keeps NaN as NULL
        return value

    def values(self) -> SeriesValues:
        if self._values is None:
            try:
                loaded = self.run.source.load_series(self.run.hash, self.name, self.context)
            except (AimError, MemoryError, RecursionError):
                raise
            except Exception as e:   # not the query's fault: never a silent non-match
                raise RunError(f'the points of series {self.name!r} {self.context} of run '
                               f'{self.run.hash} could not be read ({type(e).__name__}: '
                               f'{e}). `aim storage check` names damaged runs; exclude '
                               f'this one with run.hash != {self.run.hash!r}.',
                               self.run.hash) from e
            if loaded is None:
                self._values = SeriesValues(None, None)
            else:
                self._values = SeriesValues(*loaded)
        return self._values

    def ql_getattr(self, name: str):
        if name == 'name':
            return self.name
        if name == 'context':
            return self.context
        if name == 'run':
            return self.run
        if name in METRIC_SUMMARY_ATTRIBUTES:
            return self.summary(name)
        if name == 'first':
            return self.values().first()
        if name == 'values':
            return self.values()
        return super().ql_getattr(name)

    def ql_getitem(self, key):
        raise Unsupported('metric cannot be indexed ([...])',
                          "Read a context key with metric.context['subset'].")

    def ql_call(self, name: str, args: tuple, kwargs: dict):
        if name == 'values_between':
            return self.values().between(*args, **kwargs)
        if name == 'last_n':
            return self.values().last_n(*args, **kwargs)
        hint = f'Aggregate its values: metric.values.{name}().' \
            if name in SeriesValues.ql_methods else None
        raise Unsupported(f'metric has no method {name}()',
                          hint or f"Its methods: {', '.join(self.ql_methods)}.")

    def ql_value(self):
        return self.name

    def __repr__(self):
        return f'<metric {self.name} {self.context} of run {self.run.hash}>'


class SeriesValues(QueryObject):
    """The values of a series (or a slice of them), with aggregates for queries.

    An item is the value at a step, as on the SDK's Metric (`metric.values[100]`).
    Elsewhere it is the list of its values (as Python numbers): `min(metric.values)`,
    `sorted(...)`, `list(...)[-1]`, `metric.values == [...]` see that list."""
    __slots__ = ('_list', 'steps', 'values')
    ql_describe = "metric.values (a series' values)"
    ql_methods = ('mean', 'median', 'std', 'min', 'max', 'sum', 'count', 'first', 'last',
                  'values_between', 'last_n')

    def __init__(self, steps, values):
        self.steps = steps
        self.values = values
        self._list: list | None = None

    def _empty(self) -> bool:
        return self.values is None or len(self.values) == 0

    def between(self, start, stop):
        """Values whose step s satisfies start <= s < stop (like range)."""
        for bound in (start, stop):
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise Unsupported(f'values_between(start, stop) takes two step numbers, '
                                  f'not {type(bound).__name__}',
                                  'e.g. metric.values_between(1000, 2000).mean().')
        if self._empty():
            return self
        mask = (self.steps >= start) & (self.steps < stop)
        return SeriesValues(self.steps[mask], self.values[mask])

    def last_n(self, n):
        if isinstance(n, bool) or not isinstance(n, int):
            raise Unsupported(f'last_n(n) takes a whole number of points, not '
                              f'{type(n).__name__}', 'e.g. metric.last_n(10).mean().')
        if self._empty():
            return self
        if n <= 0:
            return SeriesValues(self.steps[:0], self.values[:0])
        return SeriesValues(self.steps[-n:], self.values[-n:])

    def _aggregate(self, name: str):
        if self._empty():
            return UNDEFINED
        import numpy as np
        values = self.values.astype('float64', copy=False)
        if name == 'count':
            return len(values)
        if name == 'first':
            return _scalar(self.values[0])
        if name == 'last':
            return _scalar(self.values[-1])
        fn = getattr(np, name)   # mean, median, std, min, max, sum
        return float(fn(values))

    def first(self):
        return self._aggregate('first')

    def ql_call(self, name: str, args: tuple, kwargs: dict):
        if name in ('mean', 'median', 'std', 'min', 'max', 'sum', 'count', 'first', 'last'):
            if args or kwargs:
                raise Unsupported(f'metric.values.{name}() takes no arguments')
            return self._aggregate(name)
        if name == 'values_between':
            return self.between(*args, **kwargs)
        if name == 'last_n':
            return self.last_n(*args, **kwargs)
        return super().ql_call(name, args, kwargs)

    def ql_getitem(self, key):
        """The value at step `key` (as `metric.values[step]` on the SDK's Metric); a step
        the series does not have is undefined, like a missing key."""
        key = plain(key)
        if isinstance(key, slice):
            raise Unsupported('metric.values[...] takes one step, not a slice',
                              'For a range of steps write metric.values_between(start, '
                              'stop); for the last n points metric.last_n(n); for '
                              'positions, list(metric.values)[a:b].')
        if isinstance(key, bool) or not isinstance(key, (int, float)):
            raise Unsupported(f'metric.values[...] takes a step (a number), not '
                              f'{type(key).__name__}')
        if self._empty() or key != key:          # NaN is no step
            return UNDEFINED
        i = int(self.steps.searchsorted(key))
        if i < len(self.steps) and self.steps[i] == key:
            return _scalar(self.values[i])
        return UNDEFINED

    def ql_bool(self) -> bool:
        return not self._empty()

    def __len__(self) -> int:
        return 0 if self.values is None else len(self.values)

    def ql_iter(self):
        return iter(self.ql_value())

    def _check_length(self) -> None:
        n = len(self.values)
        if n > functions.MAX_ITEMS:
            raise functions.limit_error(
                f"a series' values are a list of at most {functions.MAX_ITEMS} elements in "
                f'a query; this series has {n} points',
                'Use the aggregate methods, which have no limit: metric.values.min(), '
                '.max(), .mean(), .sum(), .count(), or narrow it first with '
                'metric.last_n(n) or metric.values_between(start, stop).')

    def ql_value(self) -> list:
        if self._list is None:
            if self._empty():
                self._list = []
            else:
                self._check_length()
                self._list = self.values.tolist()
        return self._list


def _scalar(x):
    return x.item() if hasattr(x, 'item') else x


def undefined_or(value):
    return UNDEFINED if value is None or isinstance(value, Undefined) else value
