"""A CPU-time budget shared by every evaluation of one query."""
from __future__ import annotations

import os
import time

from aim.ql.errors import QueryLimitError, query_error

DEFAULT_CPU_BUDGET_S = 5.0
_CHECK_EVERY = 64


def default_cpu_budget_s() -> float:
    value = os.environ.get('AIM_QUERY_CPU_BUDGET_S')
    if value:
        try:
            return max(float(value), 0.001)
        except ValueError:
            pass
    return DEFAULT_CPU_BUDGET_S


class CpuBudget:
    """Counts the CPU time spent evaluating one query, across all its candidates."""

    def __init__(self, limit_s: float | None = None, query: str | None = None):
        self.limit_s = default_cpu_budget_s() if limit_s is None else float(limit_s)
        self.query = query
        self.spent_s = 0.0
        self._started: float | None = None
        self._ticks = 0

    def __enter__(self):
        self._started = time.thread_time()
        return self

    def __exit__(self, *exc):
        if self._started is not None:
            self.spent_s += time.thread_time() - self._started
            self._started = None
        return False

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks % _CHECK_EVERY:
            return
        self.check()

    def check(self) -> None:
        spent = self.spent_s
        if self._started is not None:
            spent += time.thread_time() - self._started
        if spent > self.limit_s:
            raise query_error(
                QueryLimitError, f'the query used more than its CPU budget of '
                f'{self.limit_s:g} s', self.query, None,
                'Make the query cheaper, or raise the budget with cpu_budget_s=... '
                '(or the AIM_QUERY_CPU_BUDGET_S environment variable).')
