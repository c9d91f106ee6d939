"""The side channels as a Run uses them, in a real training-script process."""
import subprocess
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import os, subprocess, sys, time
    from aim import Run
    from tqdm import tqdm
    interval = None if sys.argv[2] == 'off' else float(sys.argv[2])
    run = Run(repo=sys.argv[1], system_tracking_interval=interval, log_system_params=True)
    print("epoch 1 starting")
    for step in tqdm(range(5), file=sys.stderr, mininterval=0, ascii=True):
        run.track(step * 0.1, name='loss', step=step)
        time.sleep(0.01)
    subprocess.run(["echo", "child process line"])
    time.sleep(float(sys.argv[3]))
    print("done", run.hash)
    run.close()
''')


def run_script(tmp_path, child_env, python, interval, seconds):
    from aim import Repo

    repo_dir = tmp_path / 'repo'
    script = tmp_path / 'train.py'
    script.write_text(SCRIPT)
    child_env['WANDB_API_KEY'] = 'must-not-be-stored'
    child_env['GIT_CEILING_DIRECTORIES'] = str(tmp_path)  # never find a repository above
    proc = subprocess.run([python, str(script), str(repo_dir), interval, str(seconds)],
                          env=child_env, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_hash = proc.stdout.split('done ')[1].strip()
    return proc, Repo(str(repo_dir)).get_run(run_hash)


def test_a_run_records_system_metrics_terminal_logs_and_system_params(
        tmp_path, child_env, python):
    proc, run = run_script(tmp_path, child_env, python, '1', 2.2)
    system = {m.name: m for m in run.metrics() if m.name.startswith('__system__')}
    for name in ('__system__cpu', '__system__p_memory_percent', '__system__memory_percent',
                 '__system__disk_percent', '__system__net_bytes_sent',
                 '__system__net_bytes_recv'):
        assert name in system
        assert system[name].context == {}
        assert len(system[name].values.values_list()) >= 2

    lines = list(run.get_terminal_logs())
    assert 'epoch 1 starting' in lines and 'child process line' in lines
    assert [line for line in lines if '5/5' in line] == [
        line for line in lines if '|' in line]  # the bar collapsed to its final state
    assert len([line for line in lines if '|' in line]) == 1
    assert 'epoch 1 starting' in proc.stdout and '5/5' in proc.stderr  # still printed

    params = run['__system_params']
    assert params['arguments'][1:3] == [str(tmp_path / 'repo'), '1']
    assert params['env_variables']['WANDB_API_KEY'] == '***'
    assert 'must-not-be-stored' not in repr(run[...])
    assert 'psutil' in params['packages']
    assert params['git_info'] == {}  # tmp_path is not inside a git repository


@pytest.mark.parametrize('interval', ['off', '0.5'])
def test_no_system_metrics_when_disabled_or_out_of_range(tmp_path, child_env, python,
                                                         interval):
    proc, run = run_script(tmp_path, child_env, python, interval, 0.3)
    assert not [m for m in run.metrics() if m.name.startswith('__system__')]
    assert [m.name for m in run.metrics()] == ['loss']
    if interval == '0.5':
        assert 'system_tracking_interval=0.5' in proc.stderr
