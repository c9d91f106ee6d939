"""Query results: the collections returned by ``Repo.query_runs`` / ``Repo.query_metrics``.

Both stream: runs and series come from one SQL statement over the index (aim.ql plans
it), newest run first, fetched in batches; a ``Run`` or ``Metric`` is built only when an
item is reached, and never opens the run's data until values are read.

    for item in repo.query_runs("run.hparams.lr > 0.01"):      # items: .run, iterate traces
        print(item.run.hash)
    for metric in repo.query_metrics("metric.name == 'loss'"):  # Metric objects
        steps, values = metric.values.sparse_numpy()
"""
from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aim.errors import AimError
from aim.ql import IndexSource, Query
from aim.ql.plan import mentions_archived
from aim.ql.views import RUN_COLUMNS, decode_context, decode_json

if TYPE_CHECKING:
    from aim.sdk.repo import Repo
    from aim.sdk.run import Run
    from aim.sdk.trace import Metric

_local = threading.local()


def _read_connection(repo: Repo):
    """A read-only connection of this thread and process to the repository database.

    Queries stream with a cursor held open between items; a connection of their own keeps
    that cursor away from the writer's transactions (WAL readers never block writers).
    """
    if hasattr(repo.index, 'read_connection'):   # PostgreSQL (aim/storage/pg_repository.py)
        key = ('pg', repo.index.url, os.getpid())
        cache = _local.__dict__.setdefault('connections', {})
        if key not in cache or cache[key].raw.closed or cache[key].raw.broken:
            cache[key] = repo.index.read_connection()   # (again, after a server restart)
        return cache[key]
    from aim.storage.sqlite import connect
    path = repo.index.path
    try:
        st = os.stat(path)
        identity = (st.st_dev, st.st_ino)   # a repository re-created at the same path
    except OSError:
        identity = None
    key = (path, identity, os.getpid())
    cache = getattr(_local, 'connections', None)
    if cache is None:
        cache = _local.connections = {}
    conn = cache.get(key)
    if conn is None:
        conn = cache[key] = connect(path, readonly=True)
    return conn


def _flush_live_runs(repo: Repo) -> None:
    """Runs written by this process are flushed first, so a query sees its own writes."""
    from aim.sdk import run as run_module
    for run in list(run_module._live_runs.values()):
        if run.repo == repo:
            try:
                run.flush()
            except AimError as e:   # reading goes on with what is already stored
                warnings.warn(f'aim: run {run.hash} could not be flushed before the query '
                              f'({e}); its newest points may be missing from the results.',
                              RuntimeWarning, stacklevel=3)


def _source(repo: Repo) -> IndexSource:
    def load_series(run_hash: str, name: str, context: dict):
        from aim.sdk.trace import Metric
        run = _run_from_hash(repo, run_hash)
        steps, values = run._read_series(Metric(run, name, context),
                                         columns=('steps', 'values'))[:2]
        return steps, values

    return IndexSource(_read_connection(repo), load_series=load_series,
                       is_active=repo._store.is_active)


class _RemoteRunView:
    """A run of a query answered by an `aim server` (the local views' ``hash``, ``row``)."""
    __slots__ = ('hash', 'row')

    def __init__(self, row: list):
        self.row = tuple(row)
        self.hash = row[0]


class _RemoteTraceView:
    __slots__ = ('run', 'row', 'context')

    def __init__(self, run: _RemoteRunView, row: list, context: dict):
        self.run, self.row, self.context = run, tuple(row), context


def _remote_trace_views(items: list) -> Iterator[_RemoteTraceView]:
    run = None
    for run_row, series_row, context in items:
        if run is None or run.hash != run_row[0]:
            run = _RemoteRunView(run_row)
        yield _RemoteTraceView(run, series_row, context)


def _run_from_hash(repo: Repo, run_hash: str) -> Run:
    row = repo.index.run_row(run_hash)
    return repo.run_from_index_row(row or {'hash': run_hash})


def _run_from_view(repo: Repo, view) -> Run:
    return repo.run_from_index_row(dict(zip(RUN_COLUMNS, view.row)))


def _metric_from_view(run: Run, view, metric_class) -> Metric:
    r = view.row    # SERIES_COLUMNS order
    summary = {'run_hash': run.hash, 'name': r[0], 'context': r[1], 'count': r[2],
               'first_step': r[3], 'last_step': r[4], 'last': r[5], 'min': r[6], 'max': r[7],
               'last_time': r[8]}
    return metric_class(run, r[0], view.context, summary)


def _no_pandas(what: str) -> ImportError:
    return ImportError(f'{what}.dataframe() needs pandas: pip install "aimkit[pandas]"')


class RunItem:
    """One run of a query result: ``.run``, and iterating it yields its traces."""

    def __init__(self, repo: Repo, view, metrics: list | None = None):
        self._repo = repo
        self._view = view
        self._run: Run | None = None
        self._metrics = metrics       # the matching traces, for trace queries

    @property
    def hash(self) -> str:
        return self._view.hash

    @property
    def run(self) -> Run:
        if self._run is None:
            self._run = _run_from_view(self._repo, self._view)
        return self._run

    def iter(self) -> Iterator[Metric]:
        if self._metrics is not None:
            return iter(self._metrics)
        return iter(self.run.metrics())

    __iter__ = iter

    def iter_runs(self) -> Iterator[RunItem]:
        # Aim's single-run collection is already bound to its run: nothing to split.
        return iter(())

    def dataframe(self, **kwargs):
        frames = [m.dataframe(**_metric_frame_options(kwargs)) for m in self]
        return _concat(frames, 'RunItem')

    def __repr__(self) -> str:
        return f'<RunItem {self.hash}>'


def _metric_frame_options(kwargs: dict) -> dict:
    return {'include_run': kwargs.get('include_run', True),
            'include_name': kwargs.get('include_name', True),
            'include_context': kwargs.get('include_context', True),
            'include_params': kwargs.get('include_params', True),
            'only_last': kwargs.get('only_last', False)}


def _concat(frames: list, what: str):
    try:
        import pandas as pd
    except ImportError:
        raise _no_pandas(what) from None
    frames = [f for f in frames if f is not None]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


class QueryRunCollection:
    """Runs matching a run query (names: ``run``), newest first; iterating yields RunItems.

    The query is compiled here, so a bad query raises at once (QuerySyntaxError /
    UnsafeQueryError, both QueryError, with the position and a hint).
    """

    def __init__(self, repo: Repo, query: str = '', report_mode=None,
                 cpu_budget_s: float | None = None, offset: str | None = None,
                 include_archived: bool = False, **kwargs):
        self.repo = repo
        self.query = query or ''
        self.offset = offset
        self._compiled = Query(self.query, 'run', cpu_budget_s,
                               include_archived=include_archived)

    def _views(self):
        _flush_live_runs(self.repo)
        if self.repo.is_remote_repo:   # evaluated by the server
            rows = self.repo._store.client.call('POST', '/query/runs', {
                'query': _server_text(self._compiled), 'offset': self.offset})['rows']
            return iter([_RemoteRunView(row) for row in rows])
        self.repo._store.recover_dead_runs()
        views = self._compiled.iter_runs(_source(self.repo))
        if self.offset:
            return _after(views, self.offset)
        return views

    def iter_runs(self) -> Iterator[RunItem]:
        for view in self._views():
            yield RunItem(self.repo, view)

    __iter__ = iter_runs

    def iter(self) -> Iterator[Metric]:
        """Every trace of every matching run."""
        for item in self.iter_runs():
            yield from item

    def hashes(self) -> list[str]:
        return [view.hash for view in self._views()]

    def dataframe(self, include_props: bool = True, include_params: bool = True):
        """One row per run (props and flattened params); None when nothing matches."""
        frames = [item.run.dataframe(include_props=include_props,
                                     include_params=include_params)
                  for item in self.iter_runs()]
        return _concat(frames, 'QueryRunCollection')

    def export(self, output: str, format: str = 'parquet'):
        """Write the matching runs (props, params, every point) into the folder ``output``:
        ``runs.jsonl`` and ``metrics.<format>`` (parquet, csv or jsonl; docs/export.md)."""
        from aim.sdk.export import export_metrics
        return export_metrics(((item.run, item.run.metrics()) for item in self.iter_runs()),
                              output, format)

    def __repr__(self) -> str:
        return f'<QueryRunCollection {self.query!r}>'

    def _repr_html_(self) -> str:
        """Jupyter's view: the first runs that match (see aim.notebook)."""
        from aim.notebook import runs_html
        return runs_html(self.iter_runs())


def _server_text(compiled: Query) -> str:
    """The query text for aim server: ``include_archived=True`` travels as a mention of
    `run.archived`, which the server's own rule then honours."""
    text = compiled.text
    if not compiled.include_archived or mentions_archived(compiled.tree):
        return text
    if compiled.tree is None:
        return 'run.archived in (True, False)'
    return f'({text}\n) and run.archived in (True, False)'


def _after(views, run_hash: str):
    """The views after the one with `run_hash` (all of them if it is not there)."""
    seen: list | None = []
    for view in views:
        if view.hash == run_hash:
            seen = None
            continue
        if seen is None:
            yield view
        else:
            seen.append(view)
    if seen is not None:       # the offset run did not match: nothing to skip
        yield from seen


class QueryTraceCollection:
    """Traces matching a trace query (names: ``run``, ``metric``/``trace``, ``context``).

    Iterating yields Metric objects, newest run first, then by name and context.
    """

    def __init__(self, repo: Repo, query: str = '', report_mode=None,
                 cpu_budget_s: float | None = None, include_archived: bool = False,
                 **kwargs):
        self.repo = repo
        self.query = query or ''
        self._compiled = Query(self.query, 'trace', cpu_budget_s,
                               include_archived=include_archived)

    def _pairs(self):
        """(RunItem, Metric) for each matching trace, sharing one Run per run."""
        from aim.sdk.trace import Metric
        _flush_live_runs(self.repo)
        item = None
        if self.repo.is_remote_repo:   # evaluated by the server
            items = self.repo._store.client.call('POST', '/query/metrics',
                                                 {'query': _server_text(self._compiled)}
                                                 )['items']
            views: Iterator = iter(_remote_trace_views(items))
        else:
            self.repo._store.recover_dead_runs()
            views = self._compiled.iter_traces(_source(self.repo))
        for view in views:
            if item is None or item._view is not view.run:
                item = RunItem(self.repo, view.run, metrics=[])
            yield item, _metric_from_view(item.run, view, Metric)

    def iter(self) -> Iterator[Metric]:
        for _, metric in self._pairs():
            yield metric

    __iter__ = iter

    def iter_runs(self) -> Iterator[RunItem]:
        """One RunItem per run with matching traces; iterating it yields those traces."""
        current = None
        for item, metric in self._pairs():
            if current is not None and item is not current:
                yield current
            current = item
            item._metrics.append(metric)
        if current is not None:
            yield current

    def dataframe(self, only_last: bool = False, include_run: bool = True,
                  include_name: bool = True, include_context: bool = True,
                  include_props: bool = True, include_params: bool = True):
        """The points of every matching trace in one frame; None when nothing matches."""
        frames = [m.dataframe(include_run=include_run, include_name=include_name,
                              include_context=include_context, include_params=include_params,
                              only_last=only_last) for m in self.iter()]
        return _concat(frames, 'QueryTraceCollection')

    def export(self, output: str, format: str = 'parquet'):
        """Write the matching series (and their runs' props and params) into the folder
        ``output``: ``runs.jsonl`` and ``metrics.<format>`` (parquet, csv or jsonl;
        docs/export.md). Unlike ``dataframe()`` it streams: memory stays flat."""
        from aim.sdk.export import export_metrics
        return export_metrics(((item.run, list(item)) for item in self.iter_runs()),
                              output, format)

    def __repr__(self) -> str:
        return f'<QueryTraceCollection {self.query!r}>'

    def _repr_html_(self) -> str:
        """Jupyter's view: the first series that match (see aim.notebook)."""
        from aim.notebook import metrics_html
        return metrics_html(self.iter())


class QueryObjectCollection:
    """Object sequences matching a query over ``run`` and the sequence variable
    (``images``, ``texts``, ``distributions``, ``audios``, ``figures``), as in
    ``repo.query_images("images.name == 'samples' and run.hparams.lr > 0.01")``.

    Iterating yields sequences (``Images``, ``Texts``, ...), newest run first, then by name
    and context."""

    def __init__(self, repo: Repo, sequence: str, query: str = '', report_mode=None,
                 cpu_budget_s: float | None = None, **kwargs):
        self.repo = repo
        self.sequence = sequence
        self.query = query or ''
        self._compiled = Query(self.query, 'trace', cpu_budget_s, sequence=sequence)

    def _pairs(self):
        from aim.sdk.sequences import sequence_from_row
        from aim.storage.objects import KIND_OF_SEQUENCE
        kind = KIND_OF_SEQUENCE[self.sequence]
        if self.repo.is_remote_repo:   # evaluated by the server
            _flush_live_runs(self.repo)
            items = self.repo._store.client.call('POST', '/query/objects', {
                'query': self.query, 'sequence': self.sequence})['items']
            item = None
            for run_row, row in items:
                view = _RemoteRunView(run_row)
                if item is None or item.hash != view.hash:
                    item = RunItem(self.repo, view, metrics=[])
                yield item, sequence_from_row(item.run, row)
            return
        _flush_live_runs(self.repo)
        self.repo._store.recover_dead_runs()
        item = None
        for view in self._compiled.iter_traces(_source(self.repo)):
            if item is None or item._view is not view.run:
                item = RunItem(self.repo, view.run, metrics=[])
            r = view.row
            row = {'id': r[9], 'run_hash': item.run.hash, 'name': r[0], 'context': r[1],
                   'kind': kind, 'count': r[2], 'first_step': r[3], 'last_step': r[4],
                   'last_time': r[8]}
            yield item, sequence_from_row(item.run, row)

    def iter(self) -> Iterator:
        for _, seq in self._pairs():
            yield seq

    __iter__ = iter

    def iter_runs(self) -> Iterator[RunItem]:
        """One RunItem per run with matching sequences; iterating it yields them."""
        current = None
        for item, seq in self._pairs():
            if current is not None and item is not current:
                yield current
            current = item
            item._metrics.append(seq)
        if current is not None:
            yield current

    def __repr__(self) -> str:
        return f'<QueryObjectCollection {self.sequence} {self.query!r}>'


QuerySequenceCollection = QueryTraceCollection
QueryRunSequenceCollection = QueryRunCollection


def collect_metrics(repo: Repo) -> dict[str, list[dict]]:
    """``{metric name: [context, ...]}`` over every run (archived ones included)."""
    if repo.is_remote_repo:
        return repo.collect_metrics()
    _flush_live_runs(repo)
    conn = _read_connection(repo)
    out: dict[str, list[dict]] = {}
    for name, context in conn.execute('SELECT DISTINCT name, context FROM series '
                                      'ORDER BY name, context'):
        out.setdefault(name, []).append(dict(decode_context(context)))
    return out


def collect_params(repo: Repo) -> dict:
    """The union of every run's params as one nested dict (later runs win on conflicts)."""
    _flush_live_runs(repo)
    conn = _read_connection(repo)
    merged: dict = {}
    for (params,) in conn.execute('SELECT params FROM runs ORDER BY creation_time, hash'):
        try:
            tree = decode_json(params, {})
        except (ValueError, RecursionError):
            continue   # a run with damaged params (`aim storage check` names it)
        if isinstance(tree, dict):
            _merge(merged, tree)
    return merged


def _merge(into: dict, tree: dict) -> None:
    for key, value in tree.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, dict):
            into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value


__all__ = ['QueryRunCollection', 'QueryTraceCollection', 'RunItem', 'collect_metrics',
           'collect_params']
