"""A compiled query: parse -> check -> plan (push-down) -> evaluate the residual.

    q = Query("run.hparams.lr > 0.01 and run.hparams.optimizer == 'adam'", kind='run')
    for row in q.iter_runs(source): ...          # index rows of `runs`, newest first

SQL over the index selects the candidates; when the SQL is not exact, the evaluator
decides on each candidate. Rows are fetched in batches, so a large result streams.
"""
from __future__ import annotations

import ast
import sqlite3
import time
from collections.abc import Iterator

from aim.ql.budget import CpuBudget
from aim.ql.check import RUN_VARIABLES, TRACE_VARIABLES, check_query
from aim.ql.errors import QueryLimitError, QuerySyntaxError, query_error
from aim.ql.evaluate import Evaluator, FrozenClock, QueryObject
from aim.ql.pushdown import Sql, translate
from aim.ql.source import IndexSource
from aim.ql.syntax import parse_query
from aim.ql.undefined import Undefined
from aim.ql.views import RUN_COLUMNS, SERIES_COLUMNS, MetricView, RunView
from aim.storage.sqlite import translate as translate_sqlite_error

_BATCH = 256
_PROGRESS_EVERY = 20_000      # SQLite VM steps between CPU-budget checks
_RUN_SELECT = ', '.join('r.' + c for c in RUN_COLUMNS)
_SERIES_SELECT = ', '.join('s.' + c for c in SERIES_COLUMNS)
_VARIABLES = ('run', 'metric', 'trace', 'context')


def _database_path(connection: sqlite3.Connection) -> str:
    try:
        return connection.execute('PRAGMA database_list').fetchone()[2] or '<memory>'
    except sqlite3.Error:
        return '<repository database>'


def _is_run(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id == 'run'
    return isinstance(node, ast.Attribute) and node.attr == 'run' and \
        isinstance(node.value, ast.Name) and node.value.id in ('metric', 'trace')


def mentions_archived(tree: ast.AST | None) -> bool:
    """Whether the query reads the prop `run.archived` (also as `metric.run.archived`);
    then archived runs are not hidden. A param named archived (`run.hparams.archived`,
    `run['archived']`) is not the prop, and the empty query mentions nothing."""
    if tree is None:
        return False
    return any(isinstance(node, ast.Attribute) and node.attr == 'archived'
               and _is_run(node.value) for node in ast.walk(tree))


def query_mentions_archived(text: str | None) -> bool:
    """Whether a query text reads `run.archived`, so that archived runs are not hidden.

    The one rule for every query, the empty one included: archived runs are left out
    unless the query mentions `run.archived`. For callers that list runs without
    compiling a query (the web's runs table): show archived runs only when this is true
    (or the user asks for them). A text that does not parse raises QuerySyntaxError, as
    the query itself would.
    """
    return mentions_archived(parse_query(text).tree)


def _uses_variables(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id in _VARIABLES for n in ast.walk(node))


class Query:
    """One query, compiled for `kind` 'run' (names: run) or 'trace' (run, metric, context)."""

    def __init__(self, text: str | None, kind: str = 'run', cpu_budget_s: float | None = None,
                 sequence: str | None = None, *, include_archived: bool = False):
        """``sequence``: for kind 'trace', the object sequences to match instead of metrics
        ('images', 'texts', 'distributions', 'audios', 'figures'), named by that variable.
        ``include_archived``: match archived runs too, though the query does not mention
        `run.archived` (a "show archived" switch); by default they are hidden unless it
        does."""
        if kind not in ('run', 'trace'):
            raise ValueError("kind must be 'run' or 'trace'")
        from aim.storage.objects import KIND_OF_SEQUENCE
        if sequence is not None and (kind != 'trace' or sequence not in KIND_OF_SEQUENCE):
            raise ValueError(f'unknown sequence {sequence!r}')
        self.text = text or ''
        self.kind = kind
        self.sequence = sequence
        self.object_kind = KIND_OF_SEQUENCE.get(sequence) if sequence else None
        self.parsed = parse_query(text)
        check_query(self.parsed, RUN_VARIABLES if kind == 'run' else
                    frozenset({'run', sequence}) if sequence else TRACE_VARIABLES)
        if sequence is not None and self.parsed.tree is not None:
            # `images.name` is `metric.name` over the object series: the same push-down
            # and evaluation (node positions, used by error messages, are kept)
            for node in ast.walk(self.parsed.tree):
                if isinstance(node, ast.Name) and node.id == sequence:
                    node.id = 'metric'
        self.tree = self.parsed.tree
        self.budget = CpuBudget(cpu_budget_s, self.text)
        self.clock = FrozenClock()
        self.evaluator = Evaluator(self.tree, self.budget, self.clock, self.text,
                                   self.parsed.position) if self.tree is not None else None
        self.include_archived = include_archived or mentions_archived(self.tree)
        self._constants: dict[int, tuple] = {}
        self.pushed = translate(self.tree, kind, self._constant) if self.tree is not None \
            else Sql('1', [], True)
        self.needs_residual = self.tree is not None and not self.pushed.exact
        self._pushed_in = {'sqlite': self.pushed}

    def pushed_for(self, dialect: str) -> Sql:
        """The push-down in ``dialect`` ('sqlite' or 'postgresql'): the same conditions,
        so equally exact."""
        if dialect not in self._pushed_in:
            self._pushed_in[dialect] = translate(self.tree, self.kind, self._constant,
                                                 dialect) if self.tree is not None \
                else Sql('TRUE', [], True)
        return self._pushed_in[dialect]

    # Constants (sub-expressions that use no query variable) are evaluated once, here.
    def _constant(self, node: ast.AST):
        key = id(node)
        if key not in self._constants:
            if self.evaluator is None or _uses_variables(node):
                self._constants[key] = (False, None)
            else:
                value = self.evaluator.value(node, {})   # QueryError (limits) propagates
                # a generator expression is consumed once: not a constant for the SQL
                ok = not isinstance(value, (Undefined, QueryObject))
                self._constants[key] = (ok, value if ok else None)
        return self._constants[key]

    def where(self, dialect: str = 'sqlite') -> tuple[str, list]:
        pushed = self.pushed_for(dialect)
        true = 'TRUE' if dialect == 'postgresql' else '1'
        parts, args = [], []
        if not self.include_archived:
            parts.append('COALESCE(r.archived, 0) = 0')
        if pushed.text not in ('1', 'TRUE'):
            parts.append(pushed.text)
            args += pushed.args
        return (' AND '.join(parts) or true), args

    def run_sql(self, dialect: str = 'sqlite') -> tuple[str, list]:
        where, args = self.where(dialect)
        # (runs without a creation time last, as SQLite orders NULL)
        nulls = ' NULLS LAST' if dialect == 'postgresql' else ''
        return (f'SELECT {_RUN_SELECT} FROM runs r WHERE {where} '
                f'ORDER BY +r.creation_time DESC{nulls}, r.hash'), args

    def trace_sql(self, dialect: str = 'sqlite') -> tuple[str, list]:
        where, args = self.where(dialect)
        # CROSS JOIN keeps runs the outer loop: SQLite walks them newest first through
        # runs_by_time and sorts only each run's few series, so the first matches stream
        # out at once (a chart wants the first thousand) instead of after a sort of all.
        # (PostgreSQL's planner chooses its own join order and has no CROSS JOIN ... ON.)
        join, nulls = ('JOIN', ' NULLS LAST') if dialect == 'postgresql' else ('CROSS JOIN', '')
        if self.object_kind is not None:
            return (f'SELECT {_RUN_SELECT}, {_SERIES_SELECT}, s.id, s.kind FROM runs r '
                    f'{join} object_series s ON s.run_hash = r.hash WHERE s.kind = ? AND '
                    f's.count > 0 AND {where} '
                    f'ORDER BY r.creation_time DESC{nulls}, r.hash, s.name, s.context'), \
                [self.object_kind, *args]
        return (f'SELECT {_RUN_SELECT}, {_SERIES_SELECT} FROM runs r '
                f'{join} series s ON s.run_hash = r.hash WHERE {where} '
                f'ORDER BY r.creation_time DESC{nulls}, r.hash, s.name, s.context'), args

    def _sql(self, connection: sqlite3.Connection, step):
        """Run one step of the SQL statement inside the query's budget: SQLite calls back
        every _PROGRESS_EVERY steps, and the statement is interrupted once the query
        must stop (CPU budget spent, cancelled, past its deadline)."""
        budget = self.budget
        budget.check()
        started = time.thread_time()

        def must_stop() -> int:
            return int(budget.stop_reason(time.thread_time() - started) is not None)

        connection.set_progress_handler(must_stop, _PROGRESS_EVERY)
        try:
            return step()
        except sqlite3.Error as e:
            if 'interrupt' in str(e).lower():
                budget.check(time.thread_time() - started)
                raise query_error(QueryLimitError, 'the query was interrupted', self.text,
                                  None, 'Run it again.') from None
            raise translate_sqlite_error(e, _database_path(connection)) from None
        finally:
            connection.set_progress_handler(None, 0)
            budget.spent_s += time.thread_time() - started

    # -------------------------------------------------------------------- run
    def iter_runs(self, source: IndexSource) -> Iterator[RunView]:
        """Matching runs (as RunViews over their index rows), newest first."""
        if self.kind != 'run':
            raise query_error(QuerySyntaxError, 'this query was compiled for traces',
                              self.text, None, "Compile it with kind='run'.")
        connection = source.connection
        sql, args = self.run_sql(getattr(connection, 'dialect', 'sqlite'))
        cursor = self._sql(connection, lambda: connection.execute(sql, args))
        evaluator = self.evaluator if self.needs_residual else None
        while True:
            rows = self._sql(connection, lambda: cursor.fetchmany(_BATCH))
            if not rows:
                return
            for row in rows:
                view = RunView(row, source)
                if evaluator is None or evaluator.matches({'run': view}):
                    yield view

    def matches_run(self, view: RunView) -> bool:
        """Evaluate the whole query on one run (used by callers holding a run already)."""
        if self.tree is None:
            return self.include_archived or not view.prop('archived')
        if not self.include_archived and view.prop('archived'):
            return False
        assert self.evaluator is not None       # there is a tree
        return self.evaluator.matches({'run': view})

    # ------------------------------------------------------------------ traces
    def iter_traces(self, source: IndexSource) -> Iterator[MetricView]:
        """Matching series (as MetricViews; `.run` is their RunView), newest run first."""
        connection = source.connection
        sql, args = self.trace_sql(getattr(connection, 'dialect', 'sqlite'))
        cursor = self._sql(connection, lambda: connection.execute(sql, args))
        evaluator = self.evaluator if self.needs_residual else None
        n_run = len(RUN_COLUMNS)
        current: RunView | None = None
        while True:
            rows = self._sql(connection, lambda: cursor.fetchmany(_BATCH))
            if not rows:
                return
            for row in rows:
                if current is None or current.row[0] != row[0]:
                    current = RunView(row[:n_run], source)
                metric = MetricView(row[n_run:], current)
                if evaluator is None or evaluator.matches(
                        {'run': current, 'metric': metric, 'trace': metric,
                         'context': metric.context}):
                    yield metric
