"""`aim convert tensorboard` on logs written by torch.utils.tensorboard."""
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from aim import Repo
from aim.cli.main import cli

pytest.importorskip('tensorboard')
pytest.importorskip('torch')


def _write(logdir, steps=20, start=0, hparams=None, extras=False):
    import torch
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(str(logdir))
    for step in range(start, start + steps):
        writer.add_scalar('loss', 1.0 / (step + 1), step)
        writer.add_scalar('lr/group0', 0.1, step)
    if extras:
        writer.add_histogram('weights', torch.arange(10.0), 0)
        writer.add_image('sample', torch.zeros(3, 4, 4), 0)
        writer.add_text('notes', 'hello', 0)
    if hparams:
        writer.add_hparams(hparams, {'hparam/best': 0.5})
    writer.close()


@pytest.fixture
def logs(tmp_path):
    logdir = tmp_path / 'logs'
    _write(logdir / 'plain', hparams={'lr': 0.01, 'opt': 'adam', 'bn': True}, extras=True)
    _write(logdir / 'keras_like' / 'train', steps=10)
    _write(logdir / 'keras_like' / 'validation', steps=5)
    _write(logdir / 'group' / 'deep_run', steps=3)
    return logdir


def test_scalars_contexts_and_hparams(logs, new_repo):
    res = CliRunner().invoke(cli, ['convert', 'tensorboard', '--logdir', str(logs),
                                   '--repo', new_repo.root_path])
    assert res.exit_code == 0, res.output
    assert 'Converted 3 TensorBoard run(s)' in res.output
    assert 'NOT CONVERTED' not in res.output
    runs = {r.name: r for r in Repo(new_repo.root_path).iter_runs()}
    assert set(runs) == {'plain', 'keras_like', 'group/deep_run'}
    plain = runs['plain']
    assert plain['hparams'] == {'lr': 0.01, 'opt': 'adam', 'bn': True}
    loss = plain.get_metric('loss')
    steps, values = loss.values.sparse_numpy()
    assert steps.tolist() == list(range(20))
    np.testing.assert_allclose(values, [1.0 / (s + 1) for s in range(20)], rtol=1e-6)
    assert plain.get_metric('lr/group0').values.last()[0] == 19
    # images, histograms and text are objects (tests/ecosystem/test_tensorboard_objects.py)
    assert plain.get_image_sequence('sample').count == 1
    assert plain.get_distribution_sequence('weights').count == 1
    assert plain.get_text_sequence('notes/text_summary').values.last_value().data == 'hello'
    # the points keep the event files' wall times (stored to the millisecond), the run
    # their span
    assert loss.timestamps[0] <= loss.timestamps[-1] <= plain.end_time + 1e-3
    assert plain.creation_time <= loss.timestamps[0] + 1e-3
    keras = runs['keras_like']
    assert keras.get_metric('loss', {'subset': 'train'}).count == 10
    assert keras.get_metric('loss', {'subset': 'validation'}).count == 5
    assert keras.get_metric('loss') is None
    q = Repo(new_repo.root_path).query_metrics(
        "metric.name == 'loss' and metric.context.subset == 'validation'")
    assert [m.run.name for m in q] == ['keras_like']


def test_a_second_conversion_adds_nothing_and_a_changed_run_is_redone(logs, new_repo):
    convert = ['convert', 'tensorboard', '--logdir', str(logs), '--repo', new_repo.root_path]
    assert CliRunner().invoke(cli, convert).exit_code == 0
    hashes = sorted(r.hash for r in new_repo.iter_runs())
    res = CliRunner().invoke(cli, convert)
    assert res.exit_code == 0 and 'Converted 0' in res.output
    assert '3 already converted' in res.output
    assert sorted(r.hash for r in new_repo.iter_runs()) == hashes
    # the training went on: the run is converted again, whole
    _write(logs / 'group' / 'deep_run', steps=4, start=3)
    res = CliRunner().invoke(cli, convert)
    assert 'Converted 1' in res.output and '2 already converted' in res.output
    deep = next(r for r in new_repo.iter_runs() if r.name == 'group/deep_run')
    assert deep.get_metric('loss').values.sparse_numpy()[0].tolist() == list(range(7))
    assert sorted(r.hash for r in new_repo.iter_runs()) == hashes


def test_flat_makes_every_folder_a_run(logs, new_repo):
    from aim.converters.tensorboard import convert_tensorboard
    report = convert_tensorboard(new_repo, str(logs), flat=True, workers=1)
    names = sorted(r.name for r in new_repo.iter_runs())
    hparams_dir = next(p.name for p in (logs / 'plain').iterdir() if p.is_dir())
    assert names == ['group/deep_run', 'keras_like/train', 'keras_like/validation', 'plain',
                     f'plain/{hparams_dir}']
    # scalars, the hparams metric, and plain's histogram, image and text
    assert not report.failed and report.points == 20 * 2 + 10 * 2 + 5 * 2 + 3 * 2 + 1 + 3


def test_an_interrupted_conversion_is_redone(logs, new_repo, monkeypatch):
    from aim.converters import tensorboard as tb
    calls = []
    real = tb.ImportedRun.finish

    def failing_finish(self, *a):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(self, *a)
    monkeypatch.setattr(tb.ImportedRun, 'finish', failing_finish)
    with pytest.raises(KeyboardInterrupt):
        tb.convert_tensorboard(new_repo, str(logs), workers=1)
    monkeypatch.setattr(tb.ImportedRun, 'finish', real)
    report = tb.convert_tensorboard(new_repo, str(logs), workers=1)
    assert len(report.converted) == 3     # the half-written one too
    assert all(r.get('__import__')['complete'] for r in new_repo.iter_runs())


def test_a_log_still_being_written_converts_what_is_complete(tmp_path, new_repo):
    logdir = tmp_path / 'live'
    _write(logdir, steps=5)
    event = next(p for p in logdir.iterdir() if 'tfevents' in p.name)
    with open(event, 'ab') as f:
        f.write(b'\x30\x00\x00\x00\x00\x00\x00\x00partial')   # a record cut short
    from aim.converters.tensorboard import convert_tensorboard
    report = convert_tensorboard(new_repo, str(logdir), workers=1)
    assert report.points == 10 and not report.failed


def test_no_event_files_is_a_clear_error(tmp_path, new_repo):
    (tmp_path / 'empty').mkdir()
    res = CliRunner().invoke(cli, ['convert', 'tensorboard', '--logdir',
                                   str(tmp_path / 'empty'), '--repo', new_repo.root_path])
    assert res.exit_code != 0 and 'No TensorBoard event files' in res.output
    shutil.rmtree(tmp_path / 'empty')


def test_tensor_scalars_of_the_scalars_plugin(tmp_path, new_repo):
    """TF2-style scalars: a tensor value with the `scalars` plugin's metadata (written with
    the first value of each tag only), here by SummaryWriter(new_style=True)."""
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(str(tmp_path / 'logs' / 'tf2'))
    for step in range(6):
        writer.add_scalar('loss', 0.5 * step, step, new_style=True)
    writer.close()
    from aim.converters.tensorboard import convert_tensorboard
    report = convert_tensorboard(new_repo, str(tmp_path / 'logs'), workers=1)
    assert report.points == 6 and not report.not_converted
    run = next(iter(new_repo.iter_runs()))
    steps, values = run.get_metric('loss').values.sparse_numpy()
    assert steps.tolist() == list(range(6)) and values.tolist() == [0.5 * s for s in range(6)]


def test_a_growing_log_is_appended_to_and_a_rewritten_one_converted_again(tmp_path, new_repo):
    from torch.utils.tensorboard import SummaryWriter

    from aim.converters.tensorboard import convert_tensorboard
    logdir = tmp_path / 'logs'
    writer = SummaryWriter(str(logdir / 'live'))
    for step in range(5):
        writer.add_scalar('loss', float(step), step, new_style=True)   # plugin metadata once
    writer.flush()
    assert convert_tensorboard(new_repo, str(logdir), workers=1).points == 5
    run = next(iter(new_repo.iter_runs()))
    created = run.creation_time
    run.add_tag('kept')                  # an edit a full re-conversion would lose
    for step in range(5, 9):
        writer.add_scalar('loss', float(step), step, new_style=True)
    writer.flush()
    report = convert_tensorboard(new_repo, str(logdir), workers=1)
    assert report.points == 4 and report.converted == [run.hash]      # only the new records
    again = new_repo.get_run(run.hash)
    assert again.tags == ['kept'] and again.creation_time == created
    steps, values = again.get_metric('loss').values.sparse_numpy()
    assert steps.tolist() == list(range(9)) and values.tolist() == [float(s) for s in range(9)]
    writer.close()
    # a file that shrank (rewritten): the run is converted again, whole
    event = next(p for p in (logdir / 'live').iterdir() if 'tfevents' in p.name)
    data = event.read_bytes()
    event.write_bytes(data[:len(data) // 2])
    report = convert_tensorboard(new_repo, str(logdir), workers=1)
    rebuilt = new_repo.get_run(run.hash)
    assert report.converted == [run.hash] and rebuilt.tags == []
    assert 0 < rebuilt.get_metric('loss').count < 9
