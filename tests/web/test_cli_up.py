"""`aim up` argument handling (the serving itself is covered by the browser tests)."""
from __future__ import annotations

import socket

from click.testing import CliRunner

from aim.cli.main import cli


def test_help_lists_the_options():
    result = CliRunner().invoke(cli, ['up', '--help'])
    assert result.exit_code == 0
    for option in ('--repo', '--host', '--port', '--read-only', '--query-timeout',
                   '--query-workers', '--token-file'):
        assert option in result.output


def test_a_directory_without_a_repository_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ['up', '--repo', str(tmp_path), '--port', '0'])
    assert result.exit_code != 0
    assert 'holds no .aim repository' in result.output and 'aim init' in result.output


def test_a_busy_port_is_reported_with_what_to_do(repo_dir):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ['up', '--repo', repo_dir, '--port', str(port)])
    assert result.exit_code != 0
    assert f'Cannot listen on 127.0.0.1:{port}' in result.output
    assert '--port 0' in result.output


def test_aim_options_that_cannot_work_say_what_to_do(repo_dir):
    result = CliRunner().invoke(cli, ['up', '--repo', repo_dir, '--base-path', '/aim'])
    assert result.exit_code != 0 and 'proxy' in result.output
    result = CliRunner().invoke(cli, ['up', '--repo', repo_dir, '--tf_logs', 'no-such-logs'])
    assert result.exit_code != 0 and 'no-such-logs' in result.output


def test_unix_socket(repo_dir, tmp_path):
    """`--uds` serves the API on a unix socket (a real subprocess, a real socket)."""
    import os
    import subprocess
    import sys
    import time

    import httpx
    path = str(tmp_path / 'aim.sock')
    proc = subprocess.Popen([sys.executable, '-m', 'aim.cli.main', 'up', '--repo', repo_dir,
                             '--uds', path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        assert 'running at http+unix://' in proc.stdout.readline()
        deadline = time.monotonic() + 15
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
            assert client.get('http://aim/api/status').json()['total_runs'] == 0
    finally:
        proc.terminate()
        proc.wait(10)


def test_server_keeps_freed_memory_for_the_next_answer():
    """glibc takes the allocator settings (so a large answer does not fault its arrays in
    afresh each time); the numpy arrays of an answer still work after them."""
    import platform
    import subprocess
    import sys
    code = ('import numpy as np; from aim.web.server import keep_freed_memory, prefault_heap; '
            'print(keep_freed_memory()); prefault_heap(48); a = np.ones(5_000_000); del a; '
            'b = np.arange(5_000_000.); print(float(b.sum()))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == repr(float(sum(range(5_000_000))))
    if platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc':
        assert out[0] == 'True'


def test_no_repository_here_or_above_is_refused_and_none_is_made(tmp_path, monkeypatch):
    """A newcomer's `aim up` in a folder without .aim: a clear refusal, not an empty
    repository served (as `aim runs ls` and `aim storage check` refuse)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ['up', '--port', '0'])
    assert result.exit_code != 0
    assert 'No aim repository in' in result.output and 'aim init' in result.output
    assert not (tmp_path / '.aim').exists()


def test_aim_up_names_the_repository_and_how_to_stop(repo_dir):
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, '-m', 'aim.cli.main', 'up', '--repo', repo_dir,
                             '--port', '0'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
    finally:
        proc.terminate()
        proc.wait(10)
    assert 'running at http://127.0.0.1:' in lines[0]
    assert f'Repository: {repo_dir}' in lines[1] and 'Ctrl-C' in lines[1]


def test_the_demo_prints_the_queries_it_runs_and_a_rerun_adds_no_runs(tmp_path, child_env):
    import subprocess
    import sys

    from aim import Repo
    from tests.conftest import REPO_ROOT
    demo = str(REPO_ROOT / 'examples' / 'demo.py')
    outputs = [subprocess.run([sys.executable, demo], cwd=tmp_path, env=child_env,
                              capture_output=True, text=True, timeout=300) for _ in range(2)]
    for out in outputs:
        assert out.returncode == 0, out.stderr
        assert "run.hparams.lr > 0.05 and run.experiment == 'demo'" in out.stdout
        assert "metric = 'loss' and context['subset'] = 'val'" in out.stdout
        assert "query_images: images.context.subset == 'val'" in out.stdout
    repo = Repo(str(tmp_path))
    assert len(repo.list_all_runs()) == 3
    run = repo.get_run('demo-lr-0.1')
    assert run.get_image_sequence('decision surface', {'subset': 'val'}).count == 6
    assert run.get_distribution_sequence('weights').values.last_value().bin_count == 64
    assert 'accuracy' in run.get_text_sequence('report').values.last_value().data
