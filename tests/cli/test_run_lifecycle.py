"""A run's status must tell the truth after crashes; these drive real writer processes."""
import os
import signal
import subprocess
import textwrap
import time

import pytest

from aim.errors import RunLockedError

WRITER = textwrap.dedent('''
    import sys, time
    from aim import Run
    run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.1}
    for step in range(100):
        run.track(float(step), name='loss', step=step)
    run.flush()
    print(run.hash, flush=True)
    sys.stdin.readline()   # hold the run open until told (or killed)
    run.close()
''')


@pytest.fixture
def writer(repo_dir, child_env, python, tmp_path):
    script = tmp_path / 'writer.py'
    script.write_text(WRITER)
    procs = []

    def start():
        proc = subprocess.Popen([python, str(script), str(repo_dir)], env=child_env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        run_hash = proc.stdout.readline().strip()
        assert run_hash, 'the writer process did not start'
        return proc, run_hash

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_a_live_run_cannot_be_opened_twice_for_writing(writer, repo_dir, reopen):
    from aim import Run

    proc, run_hash = writer()
    with pytest.raises(RunLockedError) as caught:
        Run(run_hash, repo=str(repo_dir), system_tracking_interval=None,
            capture_terminal_logs=False)
    assert caught.value.pid == proc.pid
    assert str(proc.pid) in str(caught.value) and run_hash in str(caught.value)
    # reading it meanwhile works, and shows it active
    run = reopen(repo_dir).get_run(run_hash)
    assert run.active and run.end_time is None
    assert run_hash in reopen(repo_dir).list_active_runs()
    proc.communicate('\n', timeout=30)
    assert not reopen(repo_dir).get_run(run_hash).active


def test_a_killed_run_shows_inactive_and_can_be_resumed(writer, repo_dir, reopen, invoke):
    from aim import Run

    proc, run_hash = writer()
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    killed_at = time.time()

    repo = reopen(repo_dir)
    assert run_hash not in repo.list_active_runs()
    run = repo.get_run(run_hash)
    assert run.active is False
    assert run.creation_time <= run.end_time <= killed_at
    ls = invoke('runs', '--repo', repo_dir, 'ls').stdout
    assert [line for line in ls.splitlines() if line.startswith(run_hash)][0].endswith('no')

    resumed = Run(run_hash, repo=str(repo_dir), system_tracking_interval=None,
                  capture_terminal_logs=False)
    try:
        assert resumed.active and resumed['hparams'] == {'lr': 0.1}
        resumed.track(100.0, name='loss')   # step=None continues the series
    finally:
        resumed.close()
    metric = reopen(repo_dir).get_run(run_hash).get_metric('loss')
    steps, values = metric.values.sparse_numpy()
    assert list(steps) == list(range(101)) and values[-1] == 100.0


def test_runs_close_marks_a_crashed_run_finished_at_its_last_sign_of_life(
        writer, repo_dir, reopen, invoke):
    proc, run_hash = writer()
    result = invoke('runs', '--repo', repo_dir, 'close', run_hash, '-y')
    assert result.exit_code != 0
    assert f'live process ({proc.pid})' in result.output
    assert reopen(repo_dir).get_run(run_hash).active

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    result = invoke('runs', '--repo', repo_dir, 'close', run_hash, '-y')
    assert result.exit_code == 0, result.output
    run = reopen(repo_dir).get_run(run_hash)
    assert not run.active
    assert run.end_time is not None and run.end_time <= time.time()
    assert run.get_metric('loss').last_value == 99.0


def test_run_props_defaults_and_round_trip(repo_dir, reopen):
    import datetime

    from aim import Run

    run = Run(repo=str(repo_dir), system_tracking_interval=None, capture_terminal_logs=False)
    run_hash = run.hash
    assert run.name == f'Run: {run_hash}'
    assert run.experiment == 'default'
    assert run.description is None and run.tags == [] and run.archived is False
    assert run.active and run.end_time is None and run.finalized_at is None
    utc = datetime.timezone.utc
    assert run.created_at == datetime.datetime.fromtimestamp(run.creation_time, utc).replace(
        tzinfo=None)  # naive UTC, as in Aim
    run.name, run.description, run.experiment = 'baseline', 'first try', 'cifar'
    run.add_tag('lr-sweep')
    run.add_tag('keep')
    run.remove_tag('lr-sweep')
    run.archived = True
    assert run.duration >= 0
    run.close()

    stored = reopen(repo_dir).get_run(run_hash)
    assert (stored.name, stored.description, stored.experiment) == ('baseline', 'first try',
                                                                    'cifar')
    assert stored.tags == ['keep'] and stored.archived is True
    assert stored.active is False
    assert stored.end_time >= stored.creation_time
    assert stored.duration == pytest.approx(stored.end_time - stored.creation_time)
    assert isinstance(stored.finalized_at, datetime.datetime)
