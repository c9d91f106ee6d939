"""Bad SDK input: a clear error naming the argument, or a documented lossless rule, and
nothing tracked or set before is affected (docs/signals-and-limits.md)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aim import Repo, Run
from aim.errors import AimError, ParamsInputError, TrackInputError
from aim.storage.encoding import MAX_CONTEXT_BYTES, MAX_NAME_CHARS, MAX_PARAMS_BYTES

pytestmark = pytest.mark.backends

INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_intact(run: Run, extra_series: int = 0) -> None:
    """The good points and params from `good_run` are stored, and the run still takes
    points and params, in this process and for a reader."""
    run.track(3.0, name='kept', step=2, epoch=1)
    run['after'] = 'ok'
    metric = run.get_metric('kept', {'subset': 'train'})
    assert metric.values.values_list() == [1.0, 2.0]
    assert run.get_metric('kept').values.values_list() == [3.0]
    assert run['hparams'] == {'lr': 0.1, 'layers': [1, 2]} and run['after'] == 'ok'
    reader = Repo(run.repo.path).get_run(run.hash)
    assert reader.get_metric('kept', {'subset': 'train'}).values.values_list() == [1.0, 2.0]
    assert reader['hparams'] == {'lr': 0.1, 'layers': [1, 2]}
    names = [(m.name, sorted(m.context.to_dict().items())) for m in run.metrics()]
    assert len(names) == 2 + extra_series
    assert ('kept', []) in names and ('kept', [('subset', 'train')]) in names


@pytest.fixture
def good_run(make_run):
    run = make_run()
    run['hparams'] = {'lr': 0.1, 'layers': [1, 2]}
    run.track(1.0, name='kept', step=0, epoch=0, context={'subset': 'train'})
    run.track(2.0, name='kept', step=1, epoch=0, context={'subset': 'train'})
    return run


BIG = 'x' * 10_000_000  # a 10 MB string

BAD_TRACK = [
    # (kwargs, error words)
    (dict(value=1.0, name='kept', step=5, epoch=INT64_MIN), 'epoch'),
    (dict(value=1.0, name='kept', step=5, epoch=2 ** 63), 'epoch'),
    (dict(value=1.0, name='kept', step=5, epoch=INT64_MIN - 1), 'epoch'),
    (dict(value=1.0, name='kept', step=5, epoch=np.uint64(2 ** 64 - 1)), 'epoch'),
    (dict(value=1.0, name='kept', step=INT64_MIN), 'step'),
    (dict(value=1.0, name='new', step=INT64_MIN), 'step'),
    (dict(value=1.0, name='kept', step=2 ** 63), 'step'),
    (dict(value=2 ** 63, name='kept', step=5), 'value'),
    (dict(value=INT64_MIN - 1, name='kept', step=5), 'value'),
    (dict(value=10 ** 400, name='kept', step=5), 'value'),
    (dict(value=np.uint64(2 ** 64 - 1), name='kept', step=5), 'value'),
    (dict(value=1.0, name='bad\udc80name'), 'name'),
    (dict(value=1.0, name='\ud800'), 'name'),
    (dict(value=1.0, name='kept', context={'subset': 'tr\udc80ain'}), 'context'),
    (dict(value=1.0, name='kept', context={'sub\udc80set': 'train'}), 'context'),
    (dict(value=1.0, name='kept', context={'a': ['\udfff']}), 'context'),
    (dict(value=1.0, name='n' * (MAX_NAME_CHARS + 1)), 'name'),
    (dict(value=1.0, name=BIG), 'name'),
    (dict(value=1.0, name='kept', context={'big': 'x' * MAX_CONTEXT_BYTES}), 'context'),
    (dict(value=1.0, name='kept', context={'big': BIG}), 'context'),
    (dict(value=1.0, name='kept', context={1: 'a', '1': 'b'}), 'context'),
    # one element but no real number: the message says so, not "an array of shape ()"
    (dict(value=np.complex128(1 + 2j), name='kept', step=5), 'complex128'),
    (dict(value=np.datetime64('2020-01-01'), name='kept', step=5), 'datetime64'),
]


@pytest.mark.parametrize('kwargs, words', BAD_TRACK,
                         ids=[f'{i}-{w}' for i, (_, w) in enumerate(BAD_TRACK)])
def test_bad_track_input_is_refused_by_name_and_costs_nothing(good_run, kwargs, words):
    with pytest.raises(TrackInputError, match=words) as caught:
        good_run.track(**kwargs)
    assert isinstance(caught.value, (AimError, ValueError, TypeError))
    assert len(str(caught.value)) < 1000, 'the message must not echo a huge argument'
    assert_intact(good_run)


def test_dict_value_with_a_bad_key_keeps_the_keys_before_it(good_run):
    with pytest.raises(TrackInputError, match='name'):
        good_run.track({'a': 1.0, 'b\udc80': 2.0}, step=0)
    assert good_run.get_metric('a').values.values_list() == [1.0]
    assert_intact(good_run, extra_series=1)


def test_limits_are_inclusive(make_run):
    run = make_run()
    name = 'n' * MAX_NAME_CHARS
    run.track(1.0, name=name)
    ctx = {'k': 'v' * (MAX_CONTEXT_BYTES - len('{"k":""}'))}
    run.track(2.0, name='c', context=ctx)
    run.track(3.0, name='ext', step=INT64_MAX, epoch=INT64_MAX)
    run.track(4.0, name='ext', step=INT64_MIN + 1, epoch=INT64_MIN + 1)
    run.close()
    stored = Repo(run.repo.path).get_run(run.hash)
    assert stored.get_metric(name).values.values_list() == [1.0]
    assert stored.get_metric('c', ctx).values.values_list() == [2.0]
    ext = stored.get_metric('ext')
    steps, values = ext.values.sparse_numpy()
    assert list(steps) == [INT64_MIN + 1, INT64_MAX] and list(values) == [4.0, 3.0]
    assert list(ext.epochs.values_list() if hasattr(ext.epochs, 'values_list')
                else ext.epochs) == [INT64_MIN + 1, INT64_MAX]


BAD_PARAMS = [
    # (key, value, error type, words)
    ('p', 'x\udc80', ValueError, r"run\['p'\]"),
    ('\udc80', 1, ValueError, 'key'),
    ('p', {'\udc80': 1}, ValueError, r"run\['p'\]"),
    ('p', ['ok', {'deep': 'x\udc80'}], ValueError, r"\['deep'\]"),
    ('p', {1: 'a', '1': 'b'}, ValueError, "'1'"),
    ('p', {None: 'a', 'null': 'b'}, ValueError, "'null'"),
    (('a', 1), 2, TypeError, 'str'),
    (1, 2, TypeError, 'str'),
    ((), 2, ValueError, 'empty'),
    ('p', 2 ** 64, ValueError, r"run\['p'\]"),
    ('p', -2 ** 63 - 1, ValueError, 'int64'),
    ('p', {'n': [1, 10 ** 30]}, ValueError, r"\['n'\]\[1\]"),
    ('p', np.uint64(2 ** 64 - 1), ValueError, 'int64'),
    ('p', 'x' * (MAX_PARAMS_BYTES + 1), ValueError, 'MB'),
    ('p', ['x' * 1_000_000] * 100, ValueError, 'MB'),
    # the stored form's tag for NaN/inf: reading such a dict back would change or fail it
    ('units', {'$float': 'hello'}, ValueError, 'reserve'),
    ('x', {'$float': 'inf'}, ValueError, 'reserve'),
    ('p', {'a': {'$float': 1}}, ValueError, r"\['a'\]"),
    # keys that a query path cannot name
    ('p', {'a\tb': 1}, ValueError, 'control character'),
    ('p', {'a\x00b': 1}, ValueError, 'control character'),
    ('a\nb', 1, ValueError, 'control character'),
]


@pytest.mark.parametrize('key, value, exc, words', BAD_PARAMS,
                         ids=[f'{i}-{e.__name__}' for i, (_, _, e, _) in enumerate(BAD_PARAMS)])
def test_bad_params_are_refused_by_name_and_cost_nothing(good_run, key, value, exc, words):
    with pytest.raises(exc, match=words) as caught:
        good_run[key] = value
    assert isinstance(caught.value, ParamsInputError)
    assert len(str(caught.value)) < 1000
    assert_intact(good_run)


def test_bad_props_are_refused(good_run):
    for attr in ('name', 'description', 'experiment'):
        with pytest.raises(ValueError, match=attr):
            setattr(good_run, attr, 'bad\udc80')
    with pytest.raises(ValueError, match='tag'):
        good_run.add_tag('bad\udc80')
    assert_intact(good_run)


def test_params_exactly_at_the_limit_are_kept(make_run):
    run = make_run()
    overhead = len('{"p":""}')
    run['p'] = 'x' * (MAX_PARAMS_BYTES - overhead)
    with pytest.raises(ParamsInputError, match='MB'):
        run['q'] = 1  # one more byte of params is over
    run.close()
    assert len(Repo(run.repo.path).get_run(run.hash)['p']) == MAX_PARAMS_BYTES - overhead


def test_int64_bounds_in_params_round_trip(make_run):
    run = make_run()
    run['ints'] = [INT64_MIN, INT64_MAX, 0]
    run.close()
    assert Repo(run.repo.path).get_run(run.hash)['ints'] == [INT64_MIN, INT64_MAX, 0]


@pytest.fixture(scope='module')
def shared_run(tmp_path_factory):
    repo = Repo(str(tmp_path_factory.mktemp('limits')), init=True)
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    yield run
    run.close()


int64_step = st.integers(INT64_MIN + 1, INT64_MAX)


@SETTINGS
@given(st.lists(st.tuples(int64_step, int64_step), min_size=1, max_size=20,
                unique_by=lambda t: t[0]))
def test_int64_steps_and_epochs_round_trip(shared_run, points):
    name = f's{abs(hash(tuple(points)))}'
    for k, (step, epoch) in enumerate(points):
        shared_run.track(float(k), name=name, step=step, epoch=epoch)
    metric = shared_run.get_metric(name)
    stored = sorted(points)
    steps, _ = metric.values.sparse_numpy()
    assert [int(s) for s in steps] == [s for s, _ in stored]
    epochs = metric.epochs
    epochs = epochs.values_list() if hasattr(epochs, 'values_list') else list(epochs)
    assert [int(e) for e in epochs] == [e for _, e in stored]


@SETTINGS
@given(st.text(min_size=1, max_size=40),
       st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3))
def test_unicode_names_and_contexts_round_trip(shared_run, name, context):
    shared_run.track(1.5, name=name, context=context)
    metric = shared_run.get_metric(name, context)
    assert metric is not None and metric.values.last_value() == 1.5


surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
any_text = st.text(st.one_of(st.characters(), surrogates), min_size=1, max_size=20)


@SETTINGS
@given(any_text, any_text)
def test_any_text_is_stored_or_refused_cleanly(shared_run, name, context_value):
    """Lone surrogates included: never a raw UnicodeEncodeError, never a broken run."""
    try:
        shared_run.track(2.5, name=name, context={'k': context_value})
    except TrackInputError as e:
        assert 'name' in str(e) or 'context' in str(e)
    else:
        assert shared_run.get_metric(name, {'k': context_value}).values.last_value() == 2.5
    if shared_run.get_metric(name, {'k': context_value}) is None:  # a lookup never raises
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in name + context_value)
    try:
        shared_run['any'] = {name: context_value}
    except ParamsInputError as e:
        assert "run['any']" in str(e)
    else:
        assert shared_run['any'] == {name: context_value}
    shared_run.track(1.0, name='still-writable')


def test_adapters_keep_a_config_with_a_huge_int(make_run):
    """A framework config is saved whatever it holds: an int beyond int64 (a 128-bit seed)
    is kept as its digits rather than refused."""
    from aim.sdk.adapters.adapter_run import AdapterRun
    run = make_run()
    adapter = AdapterRun(run=run)
    adapter.set_params('hparams', {'seed': 2 ** 100, 'lr': 0.1})
    assert run['hparams'] == {'seed': str(2 ** 100), 'lr': 0.1}


def test_a_float_tag_like_dict_stored_before_reads_back_as_stored(tmp_path):
    """A repository written before such dicts were refused: its other params still read."""
    import sqlite3
    run = Run(repo=str(tmp_path), system_tracking_interval=None, capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.1}
    run_hash = run.hash
    run.close()
    conn = sqlite3.connect(str(tmp_path / '.aim' / 'repo.db'))
    with conn:
        for table, where in (('runs', 'hash=?'), ('run_props', "run_hash=? AND key='params'")):
            column = 'params' if table == 'runs' else 'value'
            conn.execute(f'UPDATE {table} SET {column}=? WHERE {where}',
                         ('{"hparams":{"lr":0.1},"units":{"$float":"hello"}}', run_hash))
    conn.close()
    stored = Repo(str(tmp_path)).get_run(run_hash)
    assert stored['hparams'] == {'lr': 0.1}
    assert stored['units'] == {'$float': 'hello'}
