"""Reading tracked data back as Aim 3 users do (reference §1.6)."""
import datetime

import numpy as np
import pytest

from aim.storage.context import Context

pytestmark = pytest.mark.backends


@pytest.fixture
def loss(make_run, repo):
    """A closed run with loss{subset: train} at steps 0, 2, 4, 6, 8 (value = step / 10)."""
    run = make_run()
    run['hparams'] = {'lr': 0.01, 'opt': {'name': 'adam'}}
    for step in range(0, 10, 2):
        run.track(step / 10, name='loss', step=step, epoch=step // 4,
                  context={'subset': 'train'})
    run.close()
    return repo.get_run(run.hash).get_metric('loss', {'subset': 'train'})


def test_metric_identity(loss):
    assert loss.name == 'loss' and loss.context == {'subset': 'train'}
    assert loss.run.hash and len(loss) == 5


def test_array_view_methods(loss):
    v = loss.values
    steps = [0, 2, 4, 6, 8]
    values = [0.0, 0.2, 0.4, 0.6, 0.8]
    assert list(v.keys()) == steps and list(v.indices()) == steps
    assert list(v.values()) == values and v.tolist() == values
    assert list(v.items()) == list(zip(steps, values))
    assert v.indices_list() == steps and v.values_list() == values
    assert v.sparse_list() == (steps, values)
    s, vals = v.sparse_numpy()    # real steps, as in v3.0.0 (HEAD returns step hashes)
    assert isinstance(s, np.ndarray) and s.tolist() == steps and vals.tolist() == values
    assert v.values_numpy().tolist() == values and v.indices_numpy().tolist() == steps
    assert v.first() == (0, 0.0) and v.last() == (8, 0.8)
    assert v.first_idx() == 0 and v.last_idx() == 8
    assert v.first_value() == 0.0 and v.last_value() == 0.8
    assert v[4] == 0.4
    with pytest.raises(KeyError):
        v[3]                       # no point at step 3


def test_slicing_values_says_what_to_use(loss):
    # Aim raises NotImplementedError for a slice
    with pytest.raises(TypeError, match='range'):
        loss.values[0:4]


def test_seed_reference_reading(loss):
    assert loss.values.values_list() == [0.0, 0.2, 0.4, 0.6, 0.8]
    steps, values = loss.values.sparse_numpy()
    assert steps.tolist() == [0, 2, 4, 6, 8] and values.tolist()[-1] == 0.8


def test_numpy_columns(loss):
    assert loss.steps.tolist() == [0, 2, 4, 6, 8]
    assert loss.epochs.tolist() == [0, 0, 1, 1, 2]
    assert loss.timestamps.dtype == np.float64 and np.all(np.diff(loss.timestamps) >= 0)
    assert loss.values_numpy().tolist() == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert loss.last() == (8, 0.8)


def test_epochs_and_timestamps_are_array_views(loss):
    assert loss.epochs.values_list() == [0, 0, 1, 1, 2]
    steps, epochs = loss.epochs.sparse_numpy()
    assert steps.tolist() == [0, 2, 4, 6, 8] and epochs.tolist() == [0, 0, 1, 1, 2]
    assert len(loss.timestamps.values_list()) == 5
    assert loss.timestamps.last_idx() == 8


def test_metric_context_is_a_context(loss, make_run):
    assert isinstance(loss.context, Context)
    assert loss.context.to_dict() == {'subset': 'train'}


def test_sequence_data(loss):
    steps, (values, epochs, times) = loss.data.items_list()
    assert steps == [0, 2, 4, 6, 8] and values == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert epochs == [0, 0, 1, 1, 2] and len(times) == 5
    steps, (values, epochs, times) = loss.data.numpy()
    assert steps.tolist() == [0, 2, 4, 6, 8] and values.tolist()[-1] == 0.8
    assert loss.data.values_list() == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert loss.data.indices_list() == [0, 2, 4, 6, 8]


def test_sequence_data_sample_keeps_the_last_point(loss):
    steps, (values, epochs, times) = loss.data.sample(3)
    assert len(steps) == 3 and steps[-1] == 8 and values[-1] == 0.8
    assert len(values) == len(epochs) == len(times) == 3
    steps, _ = loss.data.sample(100)
    assert steps.tolist() == [0, 2, 4, 6, 8]


def test_sequence_data_range(loss):
    steps, (values, epochs, times) = loss.data.range(2, 6)   # 2 <= step < 6
    assert steps.tolist() == [2, 4] and values.tolist() == [0.2, 0.4]
    assert epochs.tolist() == [0, 1] and len(times) == 2


def test_first_and_last_step_as_methods_and_values(loss):
    # Aim HEAD: metric.first_step() / last_step() are methods; queries read them as values
    assert loss.first_step() == 0 and loss.last_step() == 8
    assert loss.first_step == 0 and loss.last_step == 8


def test_summary_attributes(loss):
    assert loss.count == 5 and loss.last_value == 0.8
    assert loss.min == 0.0 and loss.max == 0.8


def test_metric_dataframe_columns(loss):
    pytest.importorskip('pandas')
    df = loss.dataframe()
    assert list(df.columns) == ['idx', 'step', 'value', 'epoch', 'time']
    assert df['step'].tolist() == [0, 2, 4, 6, 8] and df['value'].tolist()[-1] == 0.8
    assert isinstance(df['time'][0], datetime.datetime)
    full = loss.dataframe(include_run=True, include_name=True, include_context=True)
    assert {'run.hash', 'metric.name', 'metric.context.subset'} <= set(full.columns)
    assert full['metric.context.subset'][0] == 'train' and full['metric.name'][0] == 'loss'
    last = loss.dataframe(only_last=True)
    assert last['step'].tolist() == [8]


def test_metric_dataframe_params(loss):
    pytest.importorskip('pandas')
    df = loss.dataframe(include_run=True, include_params=True)
    assert df['run.hparams.lr'][0] == 0.01 and df['run.hparams.opt.name'][0] == 'adam'


def test_run_metrics_iteration(make_run):
    run = make_run()
    run.track(1.0, name='loss', context={'subset': 'train'})
    run.track(2.0, name='loss', context={'subset': 'val'})
    run.track(3.0, name='acc')
    run.flush()
    got = sorted((m.name, tuple(m.context.items())) for m in run.metrics())
    assert got == [('acc', ()), ('loss', (('subset', 'train'),)), ('loss', (('subset', 'val'),))]
    assert sorted(m.name for m in run.traces()) == ['acc', 'loss', 'loss']
    info = sorted((name, tuple(ctx.items())) for name, ctx, r in run.iter_metrics_info())
    assert info == got
    assert all(r is run for _, _, r in run.iter_all_traces())


def test_traces_overview(make_run):
    run = make_run()
    run.track(1.0, name='loss', context={'subset': 'train'})
    run.track(0.5, name='loss', context={'subset': 'train'})
    overview = run.get_traces_overview()
    assert len(overview) == 1
    entry = overview[0]
    assert entry['context'] == {'subset': 'train'} and entry['metric_name'] == 'loss'
    assert entry['last_value'] == 0.5


def test_get_metric_missing_returns_none(make_run):
    run = make_run()
    run.track(1.0, name='loss')
    assert run.get_metric('loss', {'subset': 'nope'}) is None
    assert run.get_metric('nope') is None


def test_terminal_logs_are_captured(repo):
    import subprocess
    import sys
    script = ('from aim import Run\n'
              f'run = Run(repo={repo.root_path!r}, system_tracking_interval=None)\n'
              'print("epoch 1 done")\n'
              'print(run.hash)\n')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    run_hash = out.split()[-1]
    logs = repo.get_run(run_hash).get_terminal_logs()
    assert 'epoch 1 done' in logs.values_list()
