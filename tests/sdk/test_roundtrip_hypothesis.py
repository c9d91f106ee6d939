"""Hypothesis round trips through a real repository: values, params, contexts."""
import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from aim import Repo, Run

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 63 - 1),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
# param keys: any text but control characters, and not the stored form's '$float' tag alone
# (both refused, see docs/signals-and-limits.md)
param_key = st.text(alphabet=st.characters(blacklist_categories=('Cs', 'Cc')), max_size=10)
json_tree = st.recursive(json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4),
    st.dictionaries(param_key, kids, max_size=4).filter(lambda d: list(d) != ['$float'])),
    max_leaves=20)
context_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 53, 2 ** 53),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10))
contexts = st.dictionaries(st.text(max_size=10), context_leaf, max_size=4)


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.fixture(scope='module')
def shared_repo(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('hyp'))
    return Repo(path, init=True)


@pytest.fixture(scope='module')
def shared_run(shared_repo):
    run = Run(repo=shared_repo, system_tracking_interval=None, capture_terminal_logs=False)
    yield run
    run.close()


@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_float_values(shared_run, values):
    name = f'f{abs(hash(tuple(map(repr, values))))}'
    for i, v in enumerate(values):
        shared_run.track(v, name=name, step=i)
    assert same(shared_run.get_metric(name).values.values_list(), values)


@SETTINGS
@given(st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), min_size=1, max_size=50))
def test_int64_values(shared_run, values):
    name = f'i{abs(hash(tuple(values)))}'
    for i, v in enumerate(values):
        shared_run.track(v, name=name, step=i)
    assert shared_run.get_metric(name).values.values_list() == values


@SETTINGS
@given(st.dictionaries(param_key.filter(bool), json_tree, max_size=5))
def test_params(shared_repo, params):
    run = Run(repo=shared_repo, system_tracking_interval=None, capture_terminal_logs=False)
    try:
        run['p'] = params
        assert same(run['p'], params)
        for k, v in params.items():
            assert same(run['p', k], v)
    finally:
        run.close()
    again = shared_repo.get_run(run.hash)
    assert same(again['p'], params)


@SETTINGS
@given(contexts)
def test_contexts(shared_run, context):
    shared_run.track(1.5, name='ctx', context=context)
    m = shared_run.get_metric('ctx', context)
    assert m is not None and same(m.context, context)
    assert m.values.last_value() == 1.5
