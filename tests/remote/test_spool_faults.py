"""The spool's promise, with real processes: whatever the network, the server or the client
does, every point tracked arrives exactly once.

Each test starts a real ``aim server`` (the ``aim_server`` fixture) and real client
processes; faults are real: SIGKILL and SIGTERM of the server and of clients.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from aim.sdk.repo import Repo

pytestmark = pytest.mark.backends

CLIENT = textwrap.dedent('''
    import os, sys, time
    from aim import Run
    url, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    offline = os.environ.get('CLIENT_OFFLINE') == '1'
    run = Run(repo=url, experiment=tag, offline=offline, system_tracking_interval=None,
              capture_terminal_logs=False)
    run['hparams'] = {'tag': tag, 'n': n}
    print(run.hash, flush=True)
    pause = float(os.environ.get('CLIENT_PAUSE_EVERY', '0') or 0)
    for i in range(n):
        run.track(float(i), name='loss', step=i, context={'subset': 'train'})
        if pause and i % 10000 == 9999:
            time.sleep(pause)
    print('tracked', flush=True)
    if os.environ.get('CLIENT_HANG') == '1':
        time.sleep(3600)
    t = time.time()
    run.close()
    print('closed %.3f' % (time.time() - t), flush=True)
''')


@pytest.fixture(autouse=True)
def spool(tmp_path, monkeypatch):
    path = str(tmp_path / 'spool')
    monkeypatch.setenv('AIM_SPOOL_DIR', path)
    return path


def start_client(url: str, n: int, tag: str, **env) -> subprocess.Popen:
    full = {**os.environ, **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, '-c', CLIENT, url, str(n), tag],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)


def read_line(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    line = proc.stdout.readline()  # type: ignore[union-attr]
    if not line:
        raise AssertionError(f'client said nothing; stderr: {proc.stderr.read()}')  # type: ignore[union-attr]
    return line.strip()


def wait_ok(proc: subprocess.Popen, timeout: float = 120.0) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def points_of(repo_path_or_url: str, run_hash: str):
    repo = Repo(repo_path_or_url)
    run = repo.get_run(run_hash)
    assert run is not None, f'run {run_hash} is not in {repo_path_or_url}'
    metric = run.get_metric('loss', {'subset': 'train'})
    assert metric is not None
    steps, values = metric.values.sparse_numpy()
    return run, steps, values


def assert_exactly(steps, values, n: int) -> None:
    assert len(steps) == n
    assert np.array_equal(steps, np.arange(n))
    assert np.array_equal(values, np.arange(n, dtype=float))


def sync(*args: str, env=None) -> subprocess.CompletedProcess:
    aim = os.path.join(os.path.dirname(sys.executable), 'aim')
    return subprocess.run([aim, 'sync', *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_a_remote_run_arrives_whole(aim_server, spool):
    server = aim_server()
    proc = start_client(server.url, 50_000, 'whole')
    run_hash = read_line(proc)
    wait_ok(proc)
    run, steps, values = points_of(server.repo, run_hash)
    assert_exactly(steps, values, 50_000)
    assert run['hparams'] == {'tag': 'whole', 'n': 50_000}
    assert run.experiment == 'whole' and not run.active and run.end_time is not None
    assert os.listdir(spool) == []   # a shipped stream leaves nothing behind


@pytest.mark.slow
def test_server_killed_and_restarted_during_a_million_points(aim_server):
    server = aim_server()
    proc = start_client(server.url, 1_000_000, 'restart', CLIENT_PAUSE_EVERY=0.005)
    run_hash = read_line(proc)
    time.sleep(1.0)
    server.kill()          # SIGKILL, mid-batch or between batches
    time.sleep(1.5)
    server.restart()
    time.sleep(1.0)
    server.kill()
    server.restart()
    out = wait_ok(proc, timeout=300)
    assert 'closed' in out
    _, steps, values = points_of(server.repo, run_hash)
    assert_exactly(steps, values, 1_000_000)


@pytest.mark.slow
def test_server_stopped_for_ten_seconds(aim_server):
    server = aim_server()
    proc = start_client(server.url, 200_000, 'pause', CLIENT_PAUSE_EVERY=0.6)
    run_hash = read_line(proc)
    time.sleep(1.0)
    server.stop()
    time.sleep(10.0)
    server.restart()
    wait_ok(proc, timeout=300)
    _, steps, values = points_of(server.repo, run_hash)
    assert_exactly(steps, values, 200_000)


def test_client_killed_then_aim_sync(aim_server, spool):
    server = aim_server()
    proc = start_client(server.url, 30_000, 'killed', CLIENT_HANG=1)
    run_hash = read_line(proc)
    # the network stalls (the server stops answering, connections stay open) while the
    # client tracks: its sender waits, the points wait in the spool
    os.killpg(server.proc.pid, signal.SIGSTOP)
    try:
        assert read_line(proc) == 'tracked'
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        os.killpg(server.proc.pid, signal.SIGCONT)
    first = sync()
    assert first.returncode == 0, first.stderr
    assert f'run {run_hash}: 30,000 points shipped' in first.stdout
    run, steps, values = points_of(server.repo, run_hash)
    assert_exactly(steps, values, 30_000)
    # the killed writer's run is ended by the sync, and its stream removed
    assert not run.active and run.end_time is not None
    assert os.listdir(spool) == []


def test_killed_mid_tracking_keeps_a_gapless_prefix(aim_server, spool):
    server = aim_server()
    proc = start_client(server.url, 5_000_000, 'midkill')
    run_hash = read_line(proc)
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = sync()
    assert result.returncode == 0, result.stderr
    _, steps, values = points_of(server.repo, run_hash)
    n = len(steps)
    assert n > 0
    assert_exactly(steps, values, n)   # steps 0..n-1, each once


def test_the_next_process_ships_a_dead_clients_spool(aim_server, spool):
    server = aim_server()
    server.stop()
    proc = start_client(server.url, 20_000, 'orphan', CLIENT_HANG=1)
    # the server is down at Run(): the client cannot start online...
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and 'Cannot reach the aim server' in err
    # ...so track offline-first: the server goes down after Run()
    server.restart()
    proc = start_client(server.url, 20_000, 'orphan', CLIENT_HANG=1)
    run_hash = read_line(proc)
    server.kill()
    assert read_line(proc) == 'tracked'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    server.restart()
    # any later process talking to that server picks the stream up in the background
    later = start_client(server.url, 10, 'later')
    read_line(later)
    wait_ok(later)
    deadline = time.time() + 30
    while time.time() < deadline:
        run = Repo(server.url).get_run(run_hash)
        metric = run.get_metric('loss', {'subset': 'train'}) if run else None
        if metric is not None and len(metric.values.sparse_numpy()[0]) == 20_000:
            break
        time.sleep(0.3)
    _, steps, values = points_of(server.repo, run_hash)
    assert_exactly(steps, values, 20_000)


def test_an_offline_run_synced_twice_has_no_duplicates(aim_server, spool, tmp_path):
    server = aim_server()
    proc = start_client(server.url, 40_000, 'offline', CLIENT_OFFLINE=1)
    run_hash = read_line(proc)
    wait_ok(proc)
    assert Repo(server.url).get_run(run_hash) is None   # nothing sent while offline
    backup = str(tmp_path / 'backup')
    shutil.copytree(spool, backup)
    shutil.copytree(spool, str(tmp_path / 'backup2'))
    assert sync().returncode == 0
    # the same spool again (a copy kept, a sync interrupted and rerun): nothing twice
    again = sync(backup)
    assert again.returncode == 0, again.stderr
    assert '0 points shipped' in again.stdout
    run, steps, values = points_of(server.repo, run_hash)
    assert_exactly(steps, values, 40_000)
    assert run['hparams'] == {'tag': 'offline', 'n': 40_000}
    # into a local repository as well
    local = str(tmp_path / 'local')
    os.makedirs(local)
    Repo.from_path(local, init=True)
    for _ in range(2):
        done = sync(str(tmp_path / 'backup2'), '--repo', local)
        assert done.returncode == 0, done.stderr
    _, steps, values = points_of(local, run_hash)
    assert_exactly(steps, values, 40_000)


def test_sync_watch_ships_a_live_offline_run(aim_server, spool):
    server = aim_server()
    aim = os.path.join(os.path.dirname(sys.executable), 'aim')
    watcher = subprocess.Popen([aim, 'sync', spool, '--watch', '--interval', '0.3',
                                '--repo', server.url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        proc = start_client(server.url, 25_000, 'watched', CLIENT_OFFLINE=1, CLIENT_HANG=1)
        os.makedirs(spool, exist_ok=True)
        run_hash = read_line(proc)
        assert read_line(proc) == 'tracked'
        deadline = time.time() + 30
        n = 0
        while time.time() < deadline and n < 25_000:
            time.sleep(0.3)
            run = Repo(server.url).get_run(run_hash)
            metric = run.get_metric('loss', {'subset': 'train'}) if run else None
            n = len(metric.values.sparse_numpy()[0]) if metric else 0
        assert n == 25_000
        assert Repo(server.url).get_run(run_hash).active   # its writer still lives
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err


def clients_arrive_whole(server, clients: int, n: int, timeout: float) -> None:
    """``clients`` processes track ``n`` points each at once; each run arrives whole."""
    procs = [start_client(server.url, n, f'c{i}') for i in range(clients)]
    hashes = [read_line(p) for p in procs]
    for p in procs:
        wait_ok(p, timeout=timeout)
    for h in hashes:
        _, steps, values = points_of(server.repo, h)
        assert_exactly(steps, values, n)


@pytest.mark.slow
def test_32_concurrent_clients(aim_server):
    clients_arrive_whole(aim_server(), 32, 10_000, timeout=300)


def test_a_full_spool_drops_new_points_with_a_warning_and_keeps_the_rest(aim_server, spool):
    server = aim_server()
    script = textwrap.dedent('''
        import sys, warnings
        from aim import Run
        warnings.simplefilter('always')
        run = Run(repo=sys.argv[1], offline=True, system_tracking_interval=None,
                  capture_terminal_logs=False)
        for i in range(200_000):
            run.track(float(i), name='loss', step=i, context={'subset': 'train'})
        run.close()
        print(run.hash)
    ''')
    proc = subprocess.run([sys.executable, '-c', script, server.url], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, 'AIM_SPOOL_MAX_BYTES': '2000000'})
    assert proc.returncode == 0, proc.stderr
    assert 'is full (AIM_SPOOL_MAX_BYTES=2,000,000)' in proc.stderr
    assert 'new points are dropped' in proc.stderr
    run_hash = proc.stdout.strip()
    assert sync().returncode == 0
    _, steps, values = points_of(server.repo, run_hash)
    # what fitted is there, in order, once; what did not was dropped, and said so
    assert 0 < len(steps) < 200_000
    assert_exactly(steps, values, len(steps))


def test_several_server_processes_serve_one_repository(aim_server):
    clients_arrive_whole(aim_server(workers=2, extra_args=['--no-ui']), 6, 20_000,
                         timeout=120)


def test_an_offline_resume_keeps_the_experiment_and_params(aim_server, spool):
    server = aim_server()
    first = start_client(server.url, 100, 'kept')
    run_hash = read_line(first)
    wait_ok(first)
    script = textwrap.dedent('''
        import sys
        from aim import Run
        run = Run(sys.argv[2], repo=sys.argv[1], offline=True, system_tracking_interval=None,
                  capture_terminal_logs=False)
        run.track(1.0, name='later', step=0)
        run['extra'] = {'x': 5}
        run['hparams', 'n'] = 7
        del run['hparams', 'tag']
        run.close()
    ''')
    res = subprocess.run([sys.executable, '-c', script, server.url, run_hash],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert sync().returncode == 0
    run, steps, values = points_of(server.repo, run_hash)
    assert_exactly(steps, values, 100)
    # the offline changes apply to the server's params, key by key
    assert run.experiment == 'kept' and run['hparams'] == {'n': 7}
    assert run['extra'] == {'x': 5}
    assert run.get_metric('later', {}).values.values_list() == [1.0]


def test_aim_runs_ls_lists_a_servers_runs(aim_server):
    server = aim_server()
    proc = start_client(server.url, 10, 'listed')
    run_hash = read_line(proc)
    wait_ok(proc)
    aim = os.path.join(os.path.dirname(sys.executable), 'aim')
    res = subprocess.run([aim, 'runs', 'ls', '--repo', server.url], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert run_hash in res.stdout and 'Total 1 runs.' in res.stdout
