"""Run.track as Aim 3 documents it (reference §1.5 and the upstream tests of §9.1)."""
import numpy as np
import pytest

from aim.storage.context import Context

pytestmark = pytest.mark.backends


def _metric(run, name, context=None):
    run.flush()
    return run.get_metric(name, context)


def test_documented_default_step_sequence(make_run):
    run = make_run()
    for step in (None, None, 10, None, 5, None):
        run.track(1.0, name='m', step=step)
    # Aim HEAD: step = max step so far + 1 -> 0, 1, 10, 11, 5, 12
    assert _metric(run, 'm').steps.tolist() == [0, 1, 5, 10, 11, 12]


def test_default_step_is_per_series(make_run):
    run = make_run()
    run.track(1.0, name='loss', context={'subset': 'train'})
    run.track(1.0, name='loss', context={'subset': 'train'})
    run.track(1.0, name='loss', context={'subset': 'val'})
    assert _metric(run, 'loss', {'subset': 'train'}).steps.tolist() == [0, 1]
    assert _metric(run, 'loss', {'subset': 'val'}).steps.tolist() == [0]


def test_default_step_continues_after_resume(make_run, repo):
    run = make_run()
    run.track(1.0, name='m', step=7)
    run.close()
    again = make_run(run_hash=run.hash)
    again.track(2.0, name='m')
    assert _metric(again, 'm').steps.tolist() == [7, 8]


def test_same_step_overwrites(make_run):
    run = make_run()
    run.track(1.0, name='m', step=3)
    run.track(2.0, name='m', step=3)
    assert _metric(run, 'm').values.items() == [(3, 2.0)]


def test_epoch_default_is_nan(make_run):
    # upstream test_query_with_epoch_none: an omitted epoch reads back as NaN
    run = make_run()
    run.track(1.0, name='m', epoch=2)
    run.track(1.0, name='m')
    epochs = _metric(run, 'm').epochs
    assert epochs[0] == 2 and np.isnan(epochs[1])


def test_dict_tracking(make_run):
    # upstream: dict tracking gives one int series per key, last values 9 and 81
    run = make_run()
    for i in range(10):
        run.track({'x': i, 'x_squared': i * i}, epoch=1, context={'subset': 'train'})
    x = _metric(run, 'x', {'subset': 'train'})
    sq = _metric(run, 'x_squared', {'subset': 'train'})
    assert x.last_value == 9 and sq.last_value == 81
    assert x.values.values_list() == list(range(10)) and x.epochs.tolist() == [1] * 10


def test_dict_tracking_with_explicit_step(make_run):
    run = make_run()
    run.track({'a': 1, 'b': 2.5}, step=3, epoch=1)
    assert _metric(run, 'a').values.items() == [(3, 1)]
    assert _metric(run, 'b').values.items() == [(3, 2.5)]


@pytest.mark.parametrize('value, expected', [
    (np.float64(0.5), 0.5), (np.float32(0.5), 0.5), (np.int64(3), 3),
    (np.array([1.5]), 1.5), (np.array([[[1.5]]]), 1.5), (True, 1), (7, 7), (2.5, 2.5)])
def test_number_types(make_run, value, expected):
    # upstream test_run_metric_types: numpy scalars and 1-element arrays are metrics
    run = make_run()
    run.track(value, name='m')
    assert _metric(run, 'm').values.values_list() == [expected]


def test_int_and_float_mix_in_one_series(make_run):
    run = make_run()
    run.track(1, name='m')
    run.track(2.5, name='m')
    run.track(3, name='m')
    assert _metric(run, 'm').values.values_list() == [1, 2.5, 3]


def test_nan_and_inf_values_are_kept(make_run):
    run = make_run()
    for v in (float('nan'), float('inf'), -float('inf')):
        run.track(v, name='m')
    values = _metric(run, 'm').values.values_numpy()
    assert np.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf


def test_same_name_different_contexts_and_runs(make_run):
    a, b = make_run(), make_run()
    a.track(1.0, name='m', context={'k': 1})
    a.track(2, name='m', context={'k': 2})
    b.track(3, name='m', context={'k': 1})
    assert _metric(a, 'm', {'k': 1}).values_list() == [1.0]
    assert _metric(a, 'm', {'k': 2}).values_list() == [2]
    assert _metric(b, 'm', {'k': 1}).values_list() == [3]


def test_context_none_and_empty_are_the_same(make_run):
    run = make_run()
    run.track(1.0, name='m', context=None)
    run.track(2.0, name='m', context={})
    run.track(3.0, name='m', context=Context({}))
    assert len(run.metrics()) == 1
    assert _metric(run, 'm', Context({})).values_list() == [1.0, 2.0, 3.0]


def test_nested_context_values(make_run):
    run = make_run()
    ctx = {'a': [1, 2], 'b': {'c': 1}}
    run.track(1.0, name='m', context=ctx)
    assert _metric(run, 'm', {'b': {'c': 1}, 'a': [1, 2]}).values_list() == [1.0]


def test_context_object_selects_the_series(make_run):
    run = make_run()
    run.track(1.0, name='loss', context={'subset': 'train'})
    run.track(2.0, name='loss', context=Context({'subset': 'val'}))
    assert _metric(run, 'loss', Context({'subset': 'train'})).values_list() == [1.0]
    assert _metric(run, 'loss', Context({'subset': 'val'})).values_list() == [2.0]
    assert run.get_trace('loss', Context({'subset': 'test'})) is None


def test_array_of_several_numbers_is_a_value_error(make_run):
    run = make_run()
    with pytest.raises(ValueError):
        run.track(np.array([1.0, 2.0]), name='m')


# Aim raises ValueError with these messages and upstream tests (and user code that catches
# ValueError) depend on it; here the same mistakes raise TypeError.
def test_missing_name_is_a_value_error(make_run):
    with pytest.raises(ValueError, match="'name' should not be None"):
        make_run().track(1.0)


def test_dict_with_name_is_a_value_error(make_run):
    with pytest.raises(ValueError, match="'name' should be None when tracking values"):
        make_run().track({'a': 1}, name='x')


@pytest.mark.parametrize('value', ['text', None])
def test_non_number_is_a_value_error(make_run, value):
    with pytest.raises(ValueError):
        make_run().track(value, name='m')


# deliberate differences (docs/compatibility.md) --------------------------------------------
def test_non_dict_context_is_refused(make_run):
    # Aim HEAD silently accepts context='train'; a series named by a bare string cannot be
    # queried with metric.context.<key>, so it is refused with a hint
    with pytest.raises(TypeError, match='context must be a dict'):
        make_run().track(1.0, name='m', context='train')


def test_non_integer_step_is_refused(make_run):
    with pytest.raises(TypeError, match='step must be an integer'):
        make_run().track(1.0, name='m', step=1.5)


def test_lists_are_not_tracked_as_values(make_run):
    # Aim HEAD stores [1.0, 2.0] as a 'list(float)' sequence; typed sequences come later
    with pytest.raises(TypeError):
        make_run().track([1.0, 2.0], name='m')
