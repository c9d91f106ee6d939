"""Live sync of TensorBoard logs: aim.ext.tensorboard_tracker and `aim up --tf_logs`."""
import os
import subprocess
import sys
import time

import pytest

from aim import Repo

pytest.importorskip('tensorboard')
pytest.importorskip('torch')


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError('timed out')


def test_a_run_syncs_its_tensorboard_folder_while_training(tmp_path, new_repo):
    from torch.utils.tensorboard import SummaryWriter

    from aim.ext.tensorboard_tracker import Run, TensorboardTracker
    logdir = tmp_path / 'tb'
    run = Run(repo=new_repo, sync_tensorboard_log_dir=str(logdir),
              system_tracking_interval=None, capture_terminal_logs=False)
    assert isinstance(run.tensorboard_tracker, TensorboardTracker)
    writer = SummaryWriter(str(logdir))
    val = SummaryWriter(str(logdir / 'validation'))
    for step in range(5):
        writer.add_scalar('loss', 1.0 / (step + 1), step)
    writer.flush()
    # the points arrive while the run is open, without closing anything
    _wait(lambda: (m := run.get_metric('loss')) is not None and m.count == 5)
    for step in range(5, 8):
        writer.add_scalar('loss', 1.0 / (step + 1), step)
        val.add_scalar('loss', 2.0, step)
    writer.add_histogram('w', __import__('torch').arange(4.0), 0)
    writer.add_hparams({'lr': 0.5}, {'hp/metric': 1.0})
    writer.close()
    val.close()
    run.close()                      # a last sync first
    stored = new_repo.get_run(run.hash)
    steps, values = stored.get_metric('loss').values.sparse_numpy()
    assert steps.tolist() == list(range(8))
    assert stored.get_metric('loss', {'subset': 'validation'}).count == 3
    assert stored['hparams'] == {'lr': 0.5}
    assert not run.tensorboard_tracker.skipped
    weights = stored.get_distribution_sequence('w')      # histograms are Distributions
    assert weights.steps == [0] and weights.values.last_value().weights.sum() == 4


def test_tracker_with_a_plain_run_and_a_record_being_written(tmp_path, new_repo):
    from torch.utils.tensorboard import SummaryWriter

    from aim import Run
    from aim.ext.tensorboard_tracker import TensorboardTracker
    logdir = tmp_path / 'tb'
    writer = SummaryWriter(str(logdir))
    for step in range(3):
        writer.add_scalar('acc', step / 10, step)
    writer.flush()
    event = next(p for p in logdir.iterdir() if 'tfevents' in p.name)
    size = event.stat().st_size
    with open(event, 'ab') as f:     # half a record: the writer is in the middle of one
        f.write(b'\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00abc')
    run = Run(repo=new_repo, system_tracking_interval=None, capture_terminal_logs=False)
    tracker = TensorboardTracker(run, str(logdir))
    assert tracker.sync() == 3
    assert tracker.sync() == 0        # nothing new: nothing tracked twice
    assert tracker._offsets[str(event)] == size
    tracker.stop()
    run.close()
    assert new_repo.get_run(run.hash).get_metric('acc').count == 3


def test_aim_up_tf_logs_shows_and_follows_the_logs(tmp_path, new_repo, child_env):
    pytest.importorskip('uvicorn')
    from torch.utils.tensorboard import SummaryWriter
    logdir = tmp_path / 'logs'
    writer = SummaryWriter(str(logdir / 'exp1'))
    for step in range(4):
        writer.add_scalar('loss', float(step), step)
    writer.flush()
    proc = subprocess.Popen([sys.executable, '-m', 'aim.cli.main', 'up', '--repo',
                             new_repo.root_path, '--port', '0', '--tf_logs', str(logdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=child_env)
    try:
        def loss_count():
            repo = Repo(new_repo.root_path)
            runs = [r for r in repo.iter_runs() if r.name == 'exp1']
            m = runs[0].get_metric('loss') if runs else None
            return m.count if m is not None else 0
        assert _wait(loss_count) == 4
        for step in range(4, 6):
            writer.add_scalar('loss', float(step), step)
        writer.close()
        _wait(lambda: loss_count() == 6)
        assert proc.poll() is None
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert 'Showing the TensorBoard logs' in out, out
    assert os.path.isdir(logdir)
