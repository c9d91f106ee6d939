"""What stops a query: its CPU budget, a wall-clock deadline, or a cancel from outside.

``CpuBudget`` counts the CPU time one query spends, across all its candidates and its SQL
statement. ``CancelScope`` is for the caller that runs a query on a thread of its own
(the web server): every query evaluated inside ``with scope:`` stops at the scope's
deadline, or soon after ``scope.cancel()`` is called from any thread::

    scope = CancelScope(wall_s=30)
    # on the worker thread
    with scope:
        runs = list(repo.query_runs(q))       # QueryLimitError once stopped
    # from any other thread, e.g. when the client goes away
    scope.cancel('the client went away')

Both are checked at the same points: every few loop iterations and calls, after every
candidate, before each batch of SQL rows, and every 20,000 SQLite steps. No single step
between two checks runs long (see the size limits in aim.ql.functions).
"""
from __future__ import annotations

import contextvars
import os
import threading
import time

from aim.ql.errors import QueryLimitError, query_error

DEFAULT_CPU_BUDGET_S = 5.0
_CHECK_EVERY = 64

_BUDGET_HINT = ('Make the query cheaper, or raise the budget with cpu_budget_s=... '
                '(or the AIM_QUERY_CPU_BUDGET_S environment variable).')
_DEADLINE_HINT = 'Make the query cheaper (narrow it with simple comparisons first).'
_CANCEL_HINT = 'Nothing was changed; run the query again if it is still wanted.'


def default_cpu_budget_s() -> float:
    value = os.environ.get('AIM_QUERY_CPU_BUDGET_S')
    if value:
        try:
            return max(float(value), 0.001)
        except ValueError:
            pass
    return DEFAULT_CPU_BUDGET_S


class CancelScope:
    """Stops the queries evaluated inside it at a wall-clock deadline (``wall_s`` seconds
    after the scope is made) or once ``cancel()`` is called. Scopes nest: a query stops
    when any enclosing scope says so. ``cancel()`` is safe to call from any thread."""

    def __init__(self, wall_s: float | None = None):
        self.wall_s = wall_s
        self.deadline = None if wall_s is None else time.monotonic() + float(wall_s)
        self._cancelled = threading.Event()
        self._reason = 'the query was cancelled'
        self._parent: CancelScope | None = None
        self._tokens: list[contextvars.Token] = []

    def cancel(self, reason: str | None = None) -> None:
        """Stop every query running inside this scope at its next check."""
        if reason and not self._cancelled.is_set():
            self._reason = reason
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def stop_reason(self) -> tuple[str, str] | None:
        """(what happened, what to do) when a query in this scope must stop, else None."""
        scope: CancelScope | None = self
        while scope is not None:
            if scope._cancelled.is_set():
                return scope._reason, _CANCEL_HINT
            if scope.deadline is not None and time.monotonic() > scope.deadline:
                return (f'the query ran past its time limit of {scope.wall_s:g} s',
                        _DEADLINE_HINT)
            scope = scope._parent
        return None

    def __enter__(self) -> CancelScope:
        self._parent = _SCOPE.get()
        self._tokens.append(_SCOPE.set(self))
        return self

    def __exit__(self, *exc) -> None:
        _SCOPE.reset(self._tokens.pop())


_SCOPE: contextvars.ContextVar[CancelScope | None] = contextvars.ContextVar(
    'aim_query_cancel_scope', default=None)


class CpuBudget:
    """Counts the CPU time spent evaluating one query, across all its candidates, and
    says when the query must stop (budget spent, cancelled, or its scope's deadline)."""

    def __init__(self, limit_s: float | None = None, query: str | None = None):
        self.limit_s = default_cpu_budget_s() if limit_s is None else float(limit_s)
        self.query = query
        self.spent_s = 0.0
        self._started: float | None = None
        self._ticks = 0
        self._cancelled = threading.Event()

    def __enter__(self):
        self._started = time.thread_time()
        return self

    def __exit__(self, *exc) -> None:
        if self._started is not None:
            self.spent_s += time.thread_time() - self._started
            self._started = None

    def cancel(self) -> None:
        """Stop this query at its next check; safe to call from any thread."""
        self._cancelled.set()

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % _CHECK_EVERY:
            return
        self.check()

    def stop_reason(self, extra_s: float = 0.0) -> tuple[str, str] | None:
        """(what happened, what to do) if the query must stop now, else None; `extra_s`
        is CPU time spent but not yet added to `spent_s`."""
        if self._cancelled.is_set():
            return 'the query was cancelled', _CANCEL_HINT
        spent = self.spent_s + extra_s
        if self._started is not None:
            spent += time.thread_time() - self._started
        if spent > self.limit_s:
            return f'the query used more than its CPU budget of {self.limit_s:g} s', \
                _BUDGET_HINT
        scope = _SCOPE.get()
        return scope.stop_reason() if scope is not None else None

    def check(self, extra_s: float = 0.0) -> None:
        """Raise QueryLimitError if the query must stop."""
        stop = self.stop_reason(extra_s)
        if stop is not None:
            raise query_error(QueryLimitError, stop[0], self.query, None, stop[1])
