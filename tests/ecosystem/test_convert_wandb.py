"""`aim convert wandb` on run folders written by wandb itself, offline (no network)."""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from aim import Repo
from aim.cli.main import cli

pytest.importorskip('wandb.sdk.internal.datastore',
                    reason="wandb's .wandb reader is not installed: "
                           "run scripts/install_ecosystem.sh (wandb<0.30)")

# Two runs in one process (wandb starts its service once). Run A logs 200 steps, enough
# for its log to span several 32 KiB blocks; each log() is bracketed by the wall clock so
# that the converted points' times can be checked. Run B samples system metrics.
WRITER = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    import wandb
    out = {'a': {}, 'b': {}}
    run = wandb.init(mode='offline', dir=sys.argv[1], project='p', name='baseline',
                     tags=['vision', 'ablation'], notes='first try',
                     config={'lr': 0.01, 'batch_size': 32, 'seed': 2 ** 64,
                             'optimizer': {'name': 'adam', 'betas': [0.9, 0.999]}})
    run.config.update({'warmup': 5})
    times = out['a']['times'] = []
    for step in range(200):
        row = {'train/loss': 1.0 / (step + 1), 'epoch': step // 50,
               'grad': {'norm': step * 0.5}}
        if step % 50 == 49:
            row['val/acc'] = step / 200
        t0 = time.time()
        wandb.log(row, step=step)
        times.append([t0, time.time()])
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    wandb.log({'sample': wandb.Image(pixels, caption='a digit'),
               'weights': wandb.Histogram(np_histogram=([1, 2, 3], [0.0, 1.0, 2.0, 3.0])),
               'preds': wandb.Table(columns=['x'], data=[[1]]), 'note': 'text',
               'huge': 2 ** 70}, step=200)
    run.summary['best_acc'] = 0.98
    out['a']['id'] = run.id
    run.finish()
    run = wandb.init(mode='offline', dir=sys.argv[1], project='q',
                     settings=wandb.Settings(x_stats_sampling_interval=0.2, console='wrap'))
    t0 = time.time()
    for step in range(3):
        wandb.log({'loss': float(step)}, step=step * 10)
        print(f'step {step} done')
        time.sleep(0.4)    # system metrics are sampled meanwhile
    sys.stdout.write('progress 10%\\rprogress 50%\\rprogress 100%\\n')
    print('<b>not markup</b> on stderr', file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    out['b']['output'] = [t0, time.time()]
    out['b']['id'], out['b']['name'] = run.id, run.name
    run.finish()
    print(json.dumps(out))
''')


@pytest.fixture(scope='module')
def wandb_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('wandb_runs')
    env = dict(os.environ, WANDB_SILENT='true', WANDB_MODE='offline',
               WANDB_DISABLE_GIT='true', WANDB_CONSOLE='off', WANDB_DIR=str(root))
    env.pop('WANDB_API_KEY', None)
    res = subprocess.run([sys.executable, '-c', WRITER, str(root)], cwd=root, env=env,
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    written = json.loads(res.stdout.strip().splitlines()[-1])
    return root / 'wandb', written


def _convert(*args):
    return CliRunner().invoke(cli, ['convert', 'wandb', *args])


def _points(output: str) -> int:
    return int(re.search(r'run\(s\) \(([\d,]+) points\)', output).group(1).replace(',', ''))


def _system_points(run) -> int:
    return sum(len(m.steps) for m in run.metrics() if m.name.startswith('__system__'))


def _runs(repo_path):
    repo = Repo(repo_path)
    return {run['wandb']['run_id']: run for run in repo.iter_runs()}


def test_history_config_props_and_idempotence(wandb_dir, new_repo):
    folder, written = wandb_dir
    res = _convert('--wandb-dir', str(folder), '--repo', new_repo.root_path)
    assert res.exit_code == 0, res.output
    assert 'Converted 2 W&B run(s)' in res.output
    assert 'NOT CONVERTED  1 W&B table-file value(s)' in res.output
    assert 'NOT CONVERTED  1 W&B history value(s) that are not numbers' in res.output

    runs = _runs(new_repo.root_path)
    a, b = runs[written['a']['id']], runs[written['b']['id']]
    assert a.name == 'baseline' and a.experiment == 'p'
    assert sorted(a.tags) == ['ablation', 'vision'] and a.description == 'first try'
    assert a['hparams'] == {'lr': 0.01, 'batch_size': 32, 'warmup': 5, 'seed': 2.0 ** 64,
                            'optimizer': {'name': 'adam', 'betas': [0.9, 0.999]}}
    assert a['wandb']['project'] == 'p' and a['wandb']['exit_code'] == 0
    summary = a['wandb']['summary']
    assert summary['best_acc'] == 0.98 and summary['train/loss'] == 1 / 200
    assert 'sample' not in summary and '_step' not in summary

    series = {(m.name, tuple(sorted(m.context.to_dict().items()))): m for m in a.metrics()}
    assert set(series) == {('train/loss', ()), ('val/acc', ()), ('epoch', ()),
                           ('grad.norm', ()), ('huge', ())}
    # an int beyond int64 (aim's limit) arrives as a float
    assert list(series['huge', ()].values.values_numpy()) == [2.0 ** 70]
    assert list(series['huge', ()].steps) == [200]
    times = written['a']['times']
    loss = series['train/loss', ()]
    steps, values = loss.values.sparse_numpy()
    assert list(steps) == list(range(200))
    assert list(values) == [1.0 / (s + 1) for s in range(200)]
    assert list(loss.epochs) == [s // 50 for s in range(200)]
    for step, t in zip(loss.steps, loss.timestamps):
        lo, hi = times[step]
        assert lo - 0.01 <= t <= hi + 0.01, (step, t, lo, hi)
    acc = series['val/acc', ()]
    assert list(acc.steps) == [49, 99, 149, 199]
    assert list(acc.values.values_numpy()) == [s / 200 for s in (49, 99, 149, 199)]
    assert list(series['grad.norm', ()].values.values_numpy()) == [s * 0.5 for s in range(200)]
    # the image file W&B wrote, byte for byte; the histogram's counts and range
    (png,) = (folder / a['wandb']['folder'] / 'files' / 'media' / 'images').iterdir()
    (image,) = a.get_image_sequence('sample', {}).values.values_list()
    assert image.caption == 'a digit' and image.get().read() == png.read_bytes()
    assert (np.asarray(image.to_pil_image()) == np.arange(48).reshape(4, 4, 3)).all()
    (hist,) = a.get_distribution_sequence('weights', {}).values.values_list()
    assert list(hist.weights) == [1, 2, 3] and hist.range == [0.0, 3.0]
    assert a.creation_time <= times[0][0] + 0.01
    assert a.end_time >= times[-1][0] - 0.01

    # A: 200 train/loss, 200 epoch, 200 grad.norm, 4 val/acc, 1 huge, 1 image, 1
    # histogram; B: 3 loss and its system metrics, sampled by wandb
    assert _points(res.output) == 610 + _system_points(b)
    assert b.name == written['b']['id'] and b.experiment == 'q' and not b.tags
    cpu = b.get_metric('__system__cpu', {})
    assert len(cpu.steps) >= 2 and list(cpu.steps) == list(range(len(cpu.steps)))
    assert all(b.creation_time - 1 <= t <= b.end_time + 1 for t in cpu.timestamps)
    (loss_b,) = [m for m in b.metrics() if not m.name.startswith('__system__')]
    assert loss_b.name == 'loss' and list(loss_b.steps) == [0, 10, 20]
    assert list(loss_b.values.values_numpy()) == [0.0, 1.0, 2.0]
    # B's console output (captured by wandb, stdout and stderr): lines as a terminal
    # showed them, with the times wandb took; A captured none
    logs = b.get_terminal_logs()
    assert logs.lines == ['step 0 done', 'step 1 done', 'step 2 done', 'progress 100%',
                          '<b>not markup</b> on stderr']
    lo, hi = written['b']['output']
    assert all(lo - 1 <= t <= hi + 1 for t in logs.timestamps), (logs.timestamps, lo, hi)
    assert a.get_terminal_logs().lines == []
    found = Repo(new_repo.root_path).query_runs(f"run.wandb.run_id == '{written['b']['id']}'")
    assert [r.run.hash for r in found.iter_runs()] == [b.hash]

    again = _convert('--wandb-dir', str(folder), '--repo', new_repo.root_path)
    assert again.exit_code == 0, again.output
    assert 'Converted 0 W&B run(s) (0 points)' in again.output
    assert '2 already converted and unchanged' in again.output
    runs = _runs(new_repo.root_path)
    assert len(runs) == 2
    assert len(runs[written['a']['id']].get_metric('train/loss', {}).steps) == 200


def test_experiment_option_and_one_run_folder(wandb_dir, new_repo):
    folder, written = wandb_dir
    latest = folder / 'latest-run'          # wandb's link to the last run folder: run B
    assert latest.is_symlink()
    res = _convert('--wandb-dir', str(latest), '--experiment', 'imported',
                   '--repo', new_repo.root_path)
    assert res.exit_code == 0, res.output
    (run,) = _runs(new_repo.root_path).values()
    assert run['wandb']['run_id'] == written['b']['id'] and run.experiment == 'imported'
    assert _points(res.output) == 3 + _system_points(run)
    # the same run as when its folder is found under wandb/: nothing new
    res = _convert('--wandb-dir', str(folder), '--repo', new_repo.root_path)
    assert 'Converted 1 W&B run(s)' in res.output
    assert '1 already converted and unchanged' in res.output
    assert len(_runs(new_repo.root_path)) == 2


def test_a_wandb_without_its_reader_is_refused(wandb_dir, new_repo, monkeypatch):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None
                        if name == 'wandb.sdk.internal.datastore' else find_spec(name, *a))
    res = _convert('--wandb-dir', str(wandb_dir[0]), '--repo', new_repo.root_path)
    assert res.exit_code == 1
    assert "has no reader for .wandb logs" in res.output
    assert "pip install 'wandb<0.30'" in res.output


def test_damaged_logs_convert_what_can_be_read(wandb_dir, new_repo, tmp_path):
    folder, written = wandb_dir
    copy = tmp_path / 'wandb'
    shutil.copytree(folder, copy, symlinks=True)
    run_a = next(p for p in copy.iterdir() if p.name.endswith(written['a']['id']))
    log_a = run_a / f"run-{written['a']['id']}.wandb"
    data = bytearray(log_a.read_bytes())
    assert len(data) > 2 * 32768      # the damage below is in the first of several blocks
    data[20000:20040] = b'\xff' * 40     # a damaged record: its block's rest is lost
    log_a.write_bytes(bytes(data[:-300]))   # and cut short, as by a crash
    (copy / 'offline-run-20260101_000000-broken').mkdir()
    (copy / 'offline-run-20260101_000000-broken' / 'run-broken.wandb').write_bytes(b'junk' * 9)

    res = _convert('--wandb-dir', str(copy), '--repo', new_repo.root_path)
    assert res.exit_code == 1, res.output
    assert 'FAILED  offline-run-20260101_000000-broken' in res.output
    assert 'Converted 2 W&B run(s)' in res.output
    assert f'damaged or cut-short part(s) of {run_a.name}' in res.output

    runs = _runs(new_repo.root_path)
    assert set(runs) == {written['a']['id'], written['b']['id']}
    a = runs[written['a']['id']]
    assert a.name == 'baseline' and a['hparams']['lr'] == 0.01
    loss = a.get_metric('train/loss', {})
    steps = list(loss.steps)
    # kept: the records before the damage, and the later blocks (reading resumes at the
    # next block, past the tail of a record that began in the damaged one); lost: the
    # rest of the damaged block
    assert {0, 1, 2} <= set(steps) and set(range(120, 200)) <= set(steps)
    assert 100 < len(steps) < 200
    for step, value in zip(steps, loss.values.values_numpy()):
        assert value == 1.0 / (step + 1)
    assert len(runs[written['b']['id']].get_metric('loss', {}).steps) == 3

    # converting again: the damaged run is unchanged, the broken one fails again
    again = _convert('--wandb-dir', str(copy), '--repo', new_repo.root_path)
    assert again.exit_code == 1 and '2 already converted and unchanged' in again.output


def test_console_output_from_the_run_files(wandb_dir, new_repo, tmp_path):
    """A log without output records (run A captured none): the console output W&B saved
    as files/output.log is converted instead, with the run's start time."""
    folder, written = wandb_dir
    run_a = next(p for p in folder.iterdir() if p.name.endswith(written['a']['id']))
    copy = tmp_path / run_a.name
    shutil.copytree(run_a, copy)
    (copy / 'files' / 'output.log').write_bytes(
        b'epoch 1\r\nbar 10%\rbar 100%\n\x1b[31mred\x1b[0m\nno newline at the end')
    res = _convert('--wandb-dir', str(copy), '--repo', new_repo.root_path)
    assert res.exit_code == 0, res.output
    (run,) = _runs(new_repo.root_path).values()
    logs = run.get_terminal_logs()
    assert logs.lines == ['epoch 1', 'bar 100%', 'red', 'no newline at the end']
    assert set(logs.timestamps) == {run.creation_time}
