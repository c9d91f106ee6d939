import datetime
import math

import numpy as np
import pytest

from aim import Run
from aim.errors import MissingRunError, ReadOnlyRunError, RunLockedError

pytestmark = pytest.mark.backends


def test_track_and_read_back(make_run, repo):
    run = make_run()
    for i in range(10):
        run.track(i * 0.5, name='loss', step=i, epoch=i // 5, context={'subset': 'train'})
    m = run.get_metric('loss', {'subset': 'train'})
    assert m.values.values_list() == [i * 0.5 for i in range(10)]
    steps, values = m.values.sparse_numpy()
    assert steps.tolist() == list(range(10))
    assert m.epochs.tolist() == [0] * 5 + [1] * 5
    assert len(m) == 10 and len(m.timestamps) == 10
    assert m.values.last() == (9, 4.5)
    assert m.name == 'loss' and m.context == {'subset': 'train'} and m.run is run
    assert run.get_trace('loss', {'subset': 'train'}) == m
    assert run.get_metric('loss') is None


def test_step_none_continues_and_replaces(make_run):
    run = make_run()
    run.track(1.0, name='m')
    run.track(2.0, name='m')
    run.track(3.0, name='m', step=10)
    run.track(4.0, name='m')
    run.track(5.0, name='m', step=5)
    run.track(6.0, name='m')
    run.track(7.0, name='m', step=1)  # replaces step 1
    m = run.get_metric('m')
    assert m.steps.tolist() == [0, 1, 5, 10, 11, 12]
    assert m.values.values_list() == [1.0, 7.0, 5.0, 3.0, 4.0, 6.0]
    assert m.last_step == 12 and m.count == 6


def test_context_none_equals_empty(make_run):
    run = make_run()
    run.track(1, name='x', context=None)
    run.track(2, name='x', context={})
    assert len(run.metrics()) == 1
    assert run.get_metric('x', {}).values.values_list() == [1, 2]


def test_number_types_round_trip(make_run):
    run = make_run()
    ints = [0, -1, 2 ** 63 - 1, -2 ** 63, True, np.int32(7), np.int64(-3)]
    floats = [np.float32(0.5), np.float64(2.5), np.array(3.0), np.array([4.0]), 1e300]
    for i, v in enumerate(ints):
        run.track(v, name='ints', step=i)
    for i, v in enumerate(floats):
        run.track(v, name='floats', step=i)
    out = run.get_metric('ints').values.values_list()
    assert out == [0, -1, 2 ** 63 - 1, -2 ** 63, 1, 7, -3]
    assert all(type(v) is int for v in out)
    assert run.get_metric('floats').values.values_list() == [0.5, 2.5, 3.0, 4.0, 1e300]
    # a series that mixes ints and floats is read back as floats
    run.track(1, name='mixed')
    run.track(1.5, name='mixed')
    assert run.get_metric('mixed').values.values_list() == [1.0, 1.5]


def test_int_series_stays_exact(make_run):
    run = make_run()
    for v in (2 ** 63 - 1, -2 ** 63, 12345678901234567):
        run.track(v, name='big')
    assert run.get_metric('big').values.values_list() == [2 ** 63 - 1, -2 ** 63, 12345678901234567]


def test_nan_and_inf_round_trip(make_run):
    run = make_run()
    for v in (float('nan'), float('inf'), float('-inf'), 1.0):
        run.track(v, name='f')
    out = run.get_metric('f').values.values_list()
    assert math.isnan(out[0]) and out[1:] == [float('inf'), float('-inf'), 1.0]


def test_dict_value_tracks_each_key(make_run):
    run = make_run()
    run.track({'loss': 0.1, 'acc': 0.9}, step=3, context={'subset': 'val'})
    names = sorted(m.name for m in run.metrics())
    assert names == ['acc', 'loss']
    assert run.get_metric('acc', {'subset': 'val'}).values.last() == (3, 0.9)


@pytest.mark.parametrize('kwargs, exc, words', [
    (dict(value='abc', name='x'), TypeError, 'must be a number'),
    (dict(value=None, name='x'), TypeError, 'must be a number'),
    (dict(value=np.array([1.0, 2.0]), name='x'), ValueError, 'shape'),
    (dict(value=1.0, name=3), TypeError, 'name must be a str'),
    (dict(value=1.0, name=None), TypeError, 'name must be a str'),
    (dict(value=1.0, name=''), ValueError, 'empty'),
    (dict(value=1.0, name='x', context='train'), TypeError, 'context must be a dict'),
    (dict(value=1.0, name='x', context=[1]), TypeError, 'context must be a dict'),
    (dict(value=1.0, name='x', context={'a': object()}), TypeError, 'cannot be stored'),
    (dict(value=1.0, name='x', context={'a': float('nan')}), ValueError, 'non-finite'),
    (dict(value=1.0, name='x', step=1.5), TypeError, 'step must be an integer'),
    (dict(value=1.0, name='x', step='3'), TypeError, 'step must be an integer'),
    (dict(value=1.0, name='x', step=2 ** 70), ValueError, 'int64'),
    (dict(value=1.0, name='x', epoch=0.5), TypeError, 'epoch must be an integer'),
])
def test_bad_track_input_raises_and_loses_nothing(make_run, kwargs, exc, words):
    run = make_run()
    run.track(1.0, name='kept', step=0)
    with pytest.raises(exc, match=words):
        run.track(**kwargs)
    run.track(2.0, name='kept', step=1)
    assert run.get_metric('kept').values.values_list() == [1.0, 2.0]
    assert [m.name for m in run.metrics()] == ['kept']


def test_params(make_run, repo):
    run = make_run()
    run['hparams'] = {'lr': 0.01, 'batch_size': 32, 'nested': {'a': [1, (2, 3)]}}
    run['hparams', 'optimizer'] = 'adam'
    run['new', 'x'] = 1
    run['nan'] = float('nan')
    assert run['hparams']['lr'] == 0.01
    assert run['hparams', 'optimizer'] == 'adam'
    assert run['hparams', 'nested', 'a'] == [1, [2, 3]]
    assert run['new'] == {'x': 1}
    assert math.isnan(run['nan'])
    assert run.get('missing', 'dflt') == 'dflt'
    assert run.get(('hparams', 'batch_size')) == 32
    with pytest.raises(KeyError):
        run['missing']
    del run['hparams', 'batch_size']
    del run['not', 'there']  # deleting a missing key is a no-op
    assert 'batch_size' not in run['hparams']
    everything = run[...]
    assert set(everything) == {'hparams', 'new', 'nan'}
    run[...] = {'only': 1}
    assert run[...] == {'only': 1}
    with pytest.raises(TypeError, match='cannot be stored'):
        run['bad'] = object()
    with pytest.raises(TypeError, match='cannot be stored'):
        run['bad'] = {1, 2}
    assert run[...] == {'only': 1}
    other = Run(run.hash, repo=repo, read_only=True)
    assert other[...] == {'only': 1}


def test_props_and_defaults(make_run):
    run = make_run(experiment='exp1')
    assert run.name == f'Run: {run.hash}' and run.hashname == run.hash
    assert run.experiment == 'exp1' and run.props.experiment == 'exp1'
    assert run.tags == [] and run.description is None and run.archived is False
    assert run.active is True and run.end_time is None
    assert isinstance(run.created_at, datetime.datetime)
    run.name = 'baseline'
    run.description = 'first try'
    run.add_tag('a')
    run.add_tag('b')
    run.add_tag('a')
    run.remove_tag('b')
    run.archived = True
    assert (run.name, run.description, run.tags, run.archived) == ('baseline', 'first try',
                                                                    ['a'], True)
    h = run.hash
    run.close()
    again = Run(h, repo=run.repo, read_only=True)
    assert (again.name, again.description, again.tags, again.archived) == (
        'baseline', 'first try', ['a'], True)
    assert again.active is False and again.end_time is not None
    assert again.duration >= 0


def test_resume_continues_series(make_run, repo):
    run = make_run()
    for i in range(5):
        run.track(float(i), name='loss')
    h = run.hash
    run.close()
    again = make_run(run_hash=h)
    again.track(5.0, name='loss')
    assert again.get_metric('loss').steps.tolist() == list(range(6))
    assert again.end_time is None and again.active


def test_hashname_alias_and_seed_signature(repo_dir):
    run = Run(hashname='myrun', repo=repo_dir, system_tracking_interval=None,
              capture_terminal_logs=False)
    assert run.hash == 'myrun'
    run.close()
    with pytest.raises(ValueError):
        Run(run_hash='a', hashname='b', repo=repo_dir)


def test_read_only_run_refuses_writes(make_run, repo):
    run = make_run()
    run.track(1.0, name='x')
    ro = Run(run.hash, repo=repo, read_only=True)
    with pytest.raises(ReadOnlyRunError):
        ro.track(1.0, name='x')
    with pytest.raises(ReadOnlyRunError):
        ro['a'] = 1
    with pytest.raises(MissingRunError):
        Run('nope', repo=repo, read_only=True)


def test_second_writer_in_same_process_is_refused(make_run):
    run = make_run()
    with pytest.raises(RunLockedError, match='already open for writing'):
        Run(run.hash, repo=run.repo, system_tracking_interval=None)


def test_traces_overview_and_iteration(make_run):
    run = make_run()
    run.track(1.0, name='a', context={'subset': 'train'})
    run.track(2.0, name='a', context={'subset': 'train'})
    run.track(3, name='b')
    overview = {(o['name'], tuple(o['context'].items())): o['last_value']
                for o in run.get_traces_overview()}
    assert overview == {('a', (('subset', 'train'),)): 2.0, ('b', ()): 3}
    assert sorted((n, tuple(c.items())) for n, c, r in run.iter_all_traces()) == [
        ('a', (('subset', 'train'),)), ('b', ())]
    assert len(list(run.traces())) == 2


def test_context_manager_closes(repo):
    with Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False) as run:
        run.track(1.0, name='x')
    assert run.active is False
    with pytest.raises(Exception, match='closed'):
        run.track(1.0, name='x')


def test_many_threads_track_into_one_run(make_run):
    import threading
    run = make_run()

    def work(k):
        for i in range(2000):
            run.track(float(i), name=f't{k}', step=i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        m = run.get_metric(f't{k}')
        assert m.steps.tolist() == list(range(2000))


def test_long_run_spans_segments_and_chunks(make_run):
    run = make_run()
    n = 150_000  # more than two journal segments, many chunks
    for i in range(n):
        run.track(float(i), name='x')
    m = run.get_metric('x')
    steps, vals = m.values.sparse_numpy()
    assert len(steps) == n and np.array_equal(steps, np.arange(n))
    assert np.array_equal(vals, np.arange(n, dtype=float))
    assert m.count == n and m.min == 0.0 and m.max == n - 1


def test_run_dropped_without_close_is_finalised(repo):
    import gc

    def work():
        run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
        run.track(1.0, name='x')
        return run.hash

    h = work()
    gc.collect()
    again = repo.get_run(h)
    assert again.active is False and again.end_time is not None
    assert again.get_metric('x').values.values_list() == [1.0]


def test_contexts_equal_as_dict_keys_stay_distinct(make_run):
    run = make_run()
    for ctx in ({'flag': True}, {'flag': 1}, {'flag': 1.0}, {'flag': True}):
        run.track(1.0, name='m', context=ctx)
    assert sorted(m.context_json for m in run.metrics()) == [
        '{"flag":1.0}', '{"flag":1}', '{"flag":true}']
    assert run.get_metric('m', {'flag': True}).count == 2


@pytest.mark.sqlite_only
def test_failed_flush_loses_nothing(make_run, repo):
    """A flush whose transaction fails keeps the points in the journal for the next one."""
    import sqlite3
    run = make_run()
    for i in range(10):
        run.track(float(i), name='x')
    db = repo._store.db
    blocker = sqlite3.connect(db.path, timeout=0)
    blocker.execute('BEGIN EXCLUSIVE')  # another process holds the write lock
    old_timeout = db.conn.execute('PRAGMA busy_timeout').fetchone()[0]
    db.conn.execute('PRAGMA busy_timeout=50')
    try:
        with pytest.raises(Exception):
            run._live.writer.flush()
    finally:
        blocker.rollback()
        blocker.close()
        db.conn.execute(f'PRAGMA busy_timeout={old_timeout}')
    for i in range(10, 20):
        run.track(float(i), name='x')
    m = run.get_metric('x')
    assert m.values.values_list() == [float(i) for i in range(20)]
    assert m.count == 20


def test_first_and_last_step_as_value_and_as_method(make_run):
    run = make_run()
    for i in range(3, 8):
        run.track(float(i), name='x', step=i)
    m = run.get_metric('x')
    assert m.first_step == 3 and m.last_step == 7
    assert m.first_step() == 3 and m.last_step() == 7


def test_numpy_context_values_name_their_own_series(make_run):
    run = make_run()
    run.track(1.0, name='m', context={'gpu': np.float64(1.0)})
    run.track(2.0, name='m', context={'gpu': 1})
    assert sorted(m.context_json for m in run.metrics()) == ['{"gpu":1.0}', '{"gpu":1}']
