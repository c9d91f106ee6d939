"""Operations on the query's own views (`metric.values`, `run.metrics`, `metric`, `run`).

A series' values behave as the list of its values wherever a list would work (functions,
iteration, comparisons with lists) and, as on the SDK's Metric, an item is the value at a
step; an operation a view does not support is a QueryTypeError naming it, never a silently
empty result.
"""
from __future__ import annotations

import pytest

from aim.errors import QueryError
from aim.ql.errors import QueryTypeError

pytestmark = pytest.mark.backends

VALUES = [-2.0, -1.0, 0.0, 1.0, 2.0]


@pytest.fixture
def series_repo(repo, make_run):
    run = make_run()
    for step, value in enumerate(VALUES):
        run.track(value, name='loss', step=step)
    run.track(1.0, name='acc', step=0, context={'subset': 'val'})
    run.close()
    return repo


def count(repo, q):
    return len(list(repo.query_metrics(q)))


@pytest.mark.parametrize('q', [
    'min(metric.values) > -1e9', 'max(metric.values) > 0', 'min(metric.values) == -2',
    'max(metric.values) == 2', 'metric.values[0] >= -1 or metric.values[0] == -2',
    'metric.values[0] == -2', 'metric.values[4] == 2', 'metric.values[3.0] == 1',
    'list(metric.values)[-1] == 2', 'list(metric.values)[1:3] == [-1, 0]',
    'sorted(metric.values)[0] is not None',
    'sorted(metric.values, reverse=True)[0] == 2', 'sum(metric.values) == 0',
    'any(metric.values)', 'not all(metric.values)', 'list(metric.values)[1] == -1',
    'tuple(metric.values) == (-2, -1, 0, 1, 2)', 'set(metric.values) == {-2, -1, 0, 1, 2}',
    'metric.values == [-2, -1, 0, 1, 2]', 'len(metric.values) == 5',
    '[v for v in metric.values][0] == -2', '-2 in metric.values', '5 not in metric.values',
    'metric.last_n(2)[3] == 1', 'metric.last_n(2)[0] is None', 'min(metric.last_n(2)) == 1',
    'max(metric.values_between(0, 2)) == -1', 'metric.values.last_n(2) == [1, 2]',
    "str(metric.values) == '[-2.0, -1.0, 0.0, 1.0, 2.0]'", 'metric.values * 1 == [-2, -1, 0, 1, 2]',
    'metric.values + [3] == [-2, -1, 0, 1, 2, 3]', 'metric.values[10] is None',
    'metric.values[-1] is None',
    "run.metrics['loss'].values[0] == -2", "min(run.metrics['loss'].values) == -2",
    "max(m.values.last() for m in run.metrics) == 2", "'loss' in run.metrics",
    "sorted(m.name for m in run.metrics) == ['acc', 'loss']",
])
def test_series_values_act_as_a_list(series_repo, q):
    assert count(series_repo, f"metric.name == 'loss' and ({q})") == 1


def test_run_metrics_length_and_list(series_repo):
    assert count(series_repo, "metric.name == 'loss' and len(run.metrics) == 2") == 1
    assert count(series_repo, "metric.name == 'loss' and len(list(run.metrics)) == 2") == 1
    assert len(list(series_repo.query_runs('len(run.metrics) == 2'))) == 1


def test_empty_series_aggregates_stay_undefined(series_repo):
    # no points in the slice: like .min(), min() of nothing is undefined, not an error
    assert count(series_repo, "metric.name == 'loss' and min(metric.values_between(50, 60)) "
                              "is None") == 1


@pytest.mark.parametrize('q, named', [
    ('metric.values > 0', 'metric.values'),
    ('metric.values[1:3] == [-1, 0]', 'values_between'),
    ("metric.values['a'] == 1", 'step'),
    ("metric.values_between(0, 'a').max() > 0", 'values_between'),
    ("metric.last_n('x').max() > 0", 'last_n'),
    ('metric.last_n(1.5).max() > 0', 'last_n'),
    ('metric.values + 1 > 0', 'metric.values'),
    ('abs(metric.values) > 0', 'abs()'),
    ('-metric.values', 'metric.values'),
    ('metric.values.index(1.0) == 3', 'index'),
    ('metric.values.mean(1) > 0', 'mean'),
    ('metric.values.foo == 1', 'foo'),
    ('metric.mean() > 0', 'mean'),
    ('metric.lastt > 0', 'lastt'),
    ('metric[0] == 1', 'metric'),
    ('run > 1', 'run'),
    ('sorted(run.metrics)', 'sorted()'),
    ('min(run.metrics) is None', 'min()'),
    ("run.metrics.get('loss')", 'get'),
    ('run.metrics.loss.last > 0', 'loss'),
    ('run.metrics[0].last > 0', 'run.metrics'),
    ('len(run) > 0', 'len()'),
    ('[x for x in run]', 'run'),
    ('run + 1', 'run'),
])
def test_unsupported_operations_on_views_are_errors(series_repo, q, named):
    with pytest.raises(QueryTypeError) as info:
        list(series_repo.query_metrics(f"metric.name == 'loss' and ({q})"))
    assert isinstance(info.value, QueryError)
    assert named in str(info.value)
    assert info.value.position is not None


def test_missing_keys_stay_undefined(series_repo):
    # data-dependent gaps are still undefined: a missing param, context key or series
    assert count(series_repo, "metric.name == 'loss' and run.nope is None") == 1
    assert count(series_repo, "metric.name == 'loss' and metric.context.subset is None") == 1
    assert count(series_repo, "metric.name == 'loss' and run.metrics['nope'].last is None") == 1
    assert count(series_repo, "metric.name == 'loss' and run.hparams.lr > 1") == 0


@pytest.mark.parametrize('q, named', [
    ('math.pi() > 3', 'math.pi'),
    ("datetime.min() is None", 'datetime.min'),
    ('math.foo > 1', 'math.foo'),
    ('math.sqrt > 1', 'math.sqrt'),
    ('datetime.now > run.created_at', 'datetime.now'),
    ('len > 1', 'len'),
    ('run.hparams.lr == max', 'max'),
    ('math == 1', 'math'),
])
def test_functions_and_constants_misused_are_refused_when_compiled(repo, q, named):
    from aim.ql.errors import UnsafeQueryError
    with pytest.raises(UnsafeQueryError) as info:
        repo.query_runs(q)
    assert named in str(info.value)
    assert info.value.position is not None


def test_functions_as_values_where_python_takes_them(repo, make_run):
    run = make_run()
    run['words'] = ['ab', 'a', 'abc']
    run.close()
    assert len(list(repo.query_runs("max(run.words, key=len) == 'abc'"))) == 1
    assert len(list(repo.query_runs('math.pi > 3 and datetime.max.year == 9999'))) == 1
    assert len(list(repo.query_runs("[len for len in run.words][0] == 'ab'"))) == 1


def test_a_long_series_as_a_list_points_to_the_aggregates(series_repo, monkeypatch):
    from aim.ql import QueryLimitError, functions
    monkeypatch.setattr(functions, 'MAX_ITEMS', 3)      # the series has 5 points
    for q in ('min(metric.values) < 0', '[v for v in metric.values][0] < 0'):
        with pytest.raises(QueryLimitError) as info:
            count(series_repo, f"metric.name == 'loss' and {q}")
        assert '5 points' in str(info.value) and 'metric.values.min()' in str(info.value)
    # the aggregates and slices within the limit still answer
    assert count(series_repo, "metric.name == 'loss' and metric.values.min() == -2") == 1
    assert count(series_repo, "metric.name == 'loss' and min(metric.last_n(2)) == 1") == 1


def test_an_item_is_the_value_at_a_step(repo, make_run):
    run = make_run()
    for step in (0, 100, 200):
        run.track(step / 100, name='loss', step=step)
    run.close()
    assert count(repo, 'metric.values[100] == 1 and metric.values[200] == 2') == 1
    assert count(repo, 'metric.values[1] is None and list(metric.values)[1] == 1') == 1
    # the same expression on the Metric the query returns
    (metric,) = repo.query_metrics('metric.values[100] == 1')
    assert metric.values[100] == 1
