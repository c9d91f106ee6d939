"""Stopping a query from outside: a wall-clock deadline and cancel() from another thread
(what the web server does to a query that runs past its limit)."""
from __future__ import annotations

import threading
import time

import pytest

from aim.ql import QueryLimitError
from aim.ql.budget import CancelScope

pytestmark = pytest.mark.backends

# A constant (evaluated once, while the query is planned) and a per-candidate loop.
SLOW = 'any(x == -1 for x in range(10 ** 6) for y in range(10 ** 6))'
SLOW_PER_RUN = 'any(x == run.run_index - 9 for x in range(10 ** 6) for y in range(10 ** 6))'


def _run_in_thread(target):
    outcome: dict = {}

    def work():
        started = time.perf_counter()
        try:
            outcome['result'] = target()
        except BaseException as e:          # noqa: B902 - reported to the test
            outcome['error'] = e
        outcome['seconds'] = time.perf_counter() - started
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize('kind', ['run', 'trace'])
@pytest.mark.parametrize('slow', [SLOW, SLOW_PER_RUN])
def test_cancel_from_another_thread_stops_a_running_query(three_runs, kind, slow):
    repo, _ = three_runs
    method = repo.query_runs if kind == 'run' else repo.query_metrics
    scope = CancelScope()

    def query():
        with scope:
            return list(method(slow, cpu_budget_s=60))
    thread, outcome = _run_in_thread(query)
    time.sleep(0.3)
    assert thread.is_alive()
    scope.cancel()
    thread.join(10)
    assert not thread.is_alive(), 'cancel() did not stop the query'
    assert isinstance(outcome.get('error'), QueryLimitError), outcome
    assert 'cancelled' in str(outcome['error'])
    assert outcome['seconds'] < 3


def test_wall_clock_deadline_stops_a_query(three_runs):
    repo, _ = three_runs
    started = time.perf_counter()
    with CancelScope(wall_s=0.3), pytest.raises(QueryLimitError) as info:
        list(repo.query_runs(SLOW, cpu_budget_s=60))
    assert time.perf_counter() - started < 2
    assert 'time limit of 0.3 s' in str(info.value)
    assert info.value.hint


def test_deadline_counts_waiting_too(three_runs):
    """Wall-clock, not CPU: a query that is past its deadline stops at its next step even
    if it spent the time waiting (here, between batches of results)."""
    repo, hashes = three_runs
    with CancelScope(wall_s=0.2):
        items = iter(repo.query_runs('run.hparams.lr > 0 and run.duration >= 0'))
        next(items)
        time.sleep(0.3)
        with pytest.raises(QueryLimitError):
            list(items)


def test_a_pushed_down_query_stops_before_its_sql(three_runs):
    repo, _ = three_runs
    scope = CancelScope()
    scope.cancel('the client went away')
    with scope, pytest.raises(QueryLimitError) as info:
        list(repo.query_runs("run.hparams.optimizer == 'adam'"))
    assert 'the client went away' in str(info.value)


def test_queries_outside_the_scope_are_not_stopped(three_runs):
    repo, _ = three_runs
    scope = CancelScope()
    with scope:
        pass
    scope.cancel()
    assert len(list(repo.query_runs("run.hparams.optimizer == 'adam'"))) == 2


def test_nested_scopes_stop_at_the_outer_cancel(three_runs):
    repo, _ = three_runs
    outer = CancelScope()
    outer.cancel()
    with outer, CancelScope(wall_s=100), pytest.raises(QueryLimitError):
        list(repo.query_runs("run.hparams.optimizer == 'adam'"))


def test_budget_cancel_stops_a_compiled_query(three_runs):
    from aim.ql import Query
    from aim.sdk.collections import _source
    repo, _ = three_runs
    query = Query(SLOW_PER_RUN, 'run', cpu_budget_s=60)
    thread, outcome = _run_in_thread(lambda: list(query.iter_runs(_source(repo))))
    time.sleep(0.3)
    query.budget.cancel()
    thread.join(10)
    assert isinstance(outcome.get('error'), QueryLimitError), outcome
