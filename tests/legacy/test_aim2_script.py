"""Aim 2 scripts run unchanged in a real process, and their data answers new-API queries."""
import os
import signal
import subprocess
import sys
import textwrap

from aim import Repo

AIM2_SCRIPT = textwrap.dedent('''
    import aim

    aim.set_params({'lr': 0.01, 'batch_size': 32}, name='hparams')
    for epoch in range(3):
        for batch in range(4):
            aim.track(1.0 / (epoch * 4 + batch + 1), name='loss', epoch=epoch,
                      subset='train')
        aim.track(0.5 + epoch / 10, name='accuracy', epoch=epoch, subset='val')
    print('done')
''')


def run_script(source: str, cwd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', source], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, 'PYTHONWARNINGS': 'default'},
                          **kwargs)


def test_aim2_style_script_runs_and_is_queryable(repo_dir, metrics_of):
    result = run_script(AIM2_SCRIPT, cwd=repo_dir)
    assert result.returncode == 0, result.stderr
    assert 'done' in result.stdout
    assert 'DeprecationWarning' in result.stderr  # the script's author is told, once per name
    assert result.stderr.count('aim.track is the Aim 2 legacy API') == 1

    repo = Repo.from_path(repo_dir)
    [run_hash] = repo.list_all_runs()
    run = repo.get_run(run_hash)
    assert run['hparams'] == {'lr': 0.01, 'batch_size': 32}
    assert not run.active and run.end_time is not None  # closed at exit

    metrics = metrics_of(repo_dir, run_hash)
    loss = metrics['loss', (('subset', 'train'),)]
    assert loss.steps.tolist() == list(range(12))
    assert loss.epochs.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert loss.values.values_list()[-1] == 1.0 / 12
    accuracy = metrics['accuracy', (('subset', 'val'),)]
    assert accuracy.values.values_list() == [0.5, 0.6, 0.7]


def test_session_is_closed_on_sigterm(repo_dir, metrics_of):
    source = textwrap.dedent('''
        import sys, time, warnings
        warnings.simplefilter('ignore')
        import aim
        session = aim.Session(experiment='terminated', system_tracking_interval=None)
        for i in range(5):
            session.track(float(i), name='loss')
        print(session.run_hash, flush=True)
        time.sleep(60)
    ''')
    process = subprocess.Popen([sys.executable, '-c', source], cwd=repo_dir,
                               stdout=subprocess.PIPE, text=True)
    try:
        run_hash = process.stdout.readline().strip()
        assert run_hash
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGTERM
    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run.experiment == 'terminated'
    assert not run.active and run.end_time is not None
    loss = metrics_of(repo_dir, run_hash)['loss', ()]
    assert loss.values.values_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
