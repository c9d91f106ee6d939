"""Many ``aim server`` processes on one PostgreSQL database, and the faults a team meets:
a server SIGKILLed mid-run, PostgreSQL restarted during tracking. Real servers, real client
processes, a real PostgreSQL (tests/pg/cluster.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from aim import Repo, Run
from aim.errors import RunLockedError
from tests.remote.server_process import REPO_ROOT, AimServer

pytestmark = pytest.mark.slow

# A client process: tracks N points of two series into the repository in argv[1] under the
# run hash argv[2], in steps that wait for a go file when one is named (so that a test can
# do something between the halves), then closes the run.
CLIENT = textwrap.dedent('''
    import os, sys, time
    from aim import Run
    url, run_hash, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    run = Run(run_hash=run_hash, repo=url, system_tracking_interval=None,
              capture_terminal_logs=False)
    run['hparams'] = {'client': run_hash, 'n': n}
    half = n // 2
    for i in range(half):
        run.track(float(i), name='loss', step=i, context={'subset': 'train'})
        run.track(i * 2, name='count', step=i)
    print('half', flush=True)
    if go != '-':
        while not os.path.exists(go):
            time.sleep(0.02)
    for i in range(half, n):
        run.track(float(i), name='loss', step=i, context={'subset': 'train'})
        run.track(i * 2, name='count', step=i)
        if i % 500 == 0:
            time.sleep(0.01)
    run.close()
    print('done', flush=True)
''')


@pytest.fixture
def client_script(tmp_path):
    path = tmp_path / 'client.py'
    path.write_text(CLIENT)
    return str(path)


@pytest.fixture
def spool_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO_ROOT, env.get('PYTHONPATH')]))
    env['AIM_SPOOL_DIR'] = str(tmp_path / 'spool')
    env['AIM_REMOTE_CLOSE_TIMEOUT_S'] = '120'
    return env


def start_client(script, url, run_hash, n, env, go='-'):
    return subprocess.Popen([sys.executable, script, url, run_hash, str(n), go],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_line(proc, word: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == word:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f'client exited {proc.returncode}: {proc.stderr.read()}')
    raise AssertionError(f'client did not print {word!r}')


def finish(proc, timeout: float = 180.0) -> None:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    assert 'done' in out, (out, err)


def assert_run_complete(repo: Repo, run_hash: str, n: int) -> None:
    run = repo.get_run(run_hash)
    assert run is not None, run_hash
    assert run['hparams'] == {'client': run_hash, 'n': n}
    steps, values = run.get_metric('loss', {'subset': 'train'}).values.sparse_numpy()
    assert np.array_equal(steps, np.arange(n)), run_hash      # every point, exactly once
    assert np.array_equal(values, np.arange(n, dtype=float))
    steps, values = run.get_metric('count', {}).values.sparse_numpy()
    assert np.array_equal(values, np.arange(n) * 2)


def servers(url: str, tmp_path, n: int = 2) -> list[AimServer]:
    out = []
    for i in range(n):
        workdir = tmp_path / f'server{i}'
        workdir.mkdir()
        out.append(AimServer(url, str(workdir)).start())
    return out


def test_two_servers_one_database_eight_clients(pg_url, tmp_path, client_script, spool_env):
    a, b = servers(pg_url, tmp_path)
    try:
        hashes = [f'client{i}run' for i in range(8)]
        procs = [start_client(client_script, (a if i % 2 else b).url, h, 4000, spool_env)
                 for i, h in enumerate(hashes)]
        for proc in procs:
            finish(proc)
        repo = Repo(pg_url)
        for h in hashes:
            assert_run_complete(repo, h, 4000)
        # a query through either server sees every point acknowledged to either of them
        for server in (a, b):
            remote = Repo(server.url)
            found = {r.run.hash for r in remote.query_runs('run.hparams.n == 4000').iter_runs()}
            assert found == set(hashes)
            lasts = {m.run.hash: m.values.last()[1] for m in
                     remote.query_metrics("metric.name == 'loss'")}
            assert lasts == {h: 3999.0 for h in hashes}
    finally:
        a.stop()
        b.stop()


def test_a_run_resumed_through_another_server_continues(pg_url, tmp_path):
    a, b = servers(pg_url, tmp_path)
    try:
        run = Run(repo=a.url, system_tracking_interval=None, capture_terminal_logs=False)
        run['hparams'] = {'lr': 0.1}
        for i in range(10):
            run.track(i, name='x')
        run.close()
        again = Run(run.hash, repo=b.url, system_tracking_interval=None,
                    capture_terminal_logs=False)
        for i in range(5):
            again.track(100 + i, name='x')      # step=None continues after the last step
        again['hparams', 'wd'] = 0.5
        again.close()
        stored = Repo(pg_url).get_run(run.hash)
        steps, values = stored.get_metric('x', {}).values.sparse_numpy()
        assert steps.tolist() == list(range(15))
        assert values.tolist() == list(range(10)) + [100, 101, 102, 103, 104]
        assert stored['hparams'] == {'lr': 0.1, 'wd': 0.5}
    finally:
        a.stop()
        b.stop()


def test_one_writer_per_run_holds_across_servers(pg_url, tmp_path):
    a, b = servers(pg_url, tmp_path)
    try:
        live = Run(repo=a.url, system_tracking_interval=None, capture_terminal_logs=False)
        live.track(1.0, name='x')
        live.flush()
        with pytest.raises(RunLockedError):
            Run(live.hash, repo=b.url, system_tracking_interval=None,
                capture_terminal_logs=False)
        with pytest.raises(RunLockedError):        # nor directly on the database
            Run(live.hash, repo=pg_url, system_tracking_interval=None,
                capture_terminal_logs=False)
        assert Repo(b.url).get_run(live.hash).active
        live.close()
        assert not Repo(b.url).get_run(live.hash).active
    finally:
        a.stop()
        b.stop()


def test_a_server_killed_mid_run_while_the_other_keeps_serving(pg_url, tmp_path, client_script,
                                                              spool_env):
    a, b = servers(pg_url, tmp_path)
    go = str(tmp_path / 'go')
    try:
        on_a = start_client(client_script, a.url, 'onkilledserver', 6000, spool_env, go)
        on_b = start_client(client_script, b.url, 'onlivingserver', 6000, spool_env, go)
        wait_line(on_a, 'half')
        wait_line(on_b, 'half')
        time.sleep(0.6)                     # the first halves on their way
        a.kill()                            # SIGKILL, mid-run
        open(go, 'w').close()
        finish(on_b)                        # the other server keeps serving
        assert_run_complete(Repo(pg_url), 'onlivingserver', 6000)
        time.sleep(1.0)                     # the client on the dead server keeps spooling
        assert on_a.poll() is None
        a.start()                           # back on the same port: the spool is shipped
        finish(on_a)
        assert_run_complete(Repo(pg_url), 'onkilledserver', 6000)
    finally:
        a.stop()
        b.stop()


def test_postgres_restarted_during_tracking_loses_nothing(pg_cluster, pg_url, tmp_path,
                                                          client_script, spool_env):
    (a,) = servers(pg_url, tmp_path, n=1)
    go = str(tmp_path / 'go')
    try:
        through_server = start_client(client_script, a.url, 'throughserver', 6000, spool_env, go)
        direct = start_client(client_script, pg_url, 'directtodb', 6000, spool_env, go)
        wait_line(through_server, 'half')
        wait_line(direct, 'half')
        pg_cluster.stop()
        open(go, 'w').close()               # both keep tracking while the database is down
        time.sleep(2.0)
        assert through_server.poll() is None and direct.poll() is None
        pg_cluster.pg_ctl_start()
        finish(through_server)
        finish(direct)
        repo = Repo(pg_url)
        assert_run_complete(repo, 'throughserver', 6000)
        assert_run_complete(repo, 'directtodb', 6000)
    finally:
        a.stop()
        if not os.path.exists(os.path.join(pg_cluster.data, 'postmaster.pid')):
            pg_cluster.pg_ctl_start()


def test_a_client_killed_while_writing_directly_loses_nothing(pg_url, tmp_path, client_script,
                                                              spool_env):
    """SIGKILL a script tracking straight into PostgreSQL: its run stays live for its lease
    (`aim runs close` refuses it meanwhile); the next process that opens the database ships
    what the spool held, once; then `aim runs close` ends the run."""
    from tests.remote.server_process import aim_command
    go = str(tmp_path / 'go-never')              # the client stops after its first half
    proc = start_client(client_script, pg_url, 'killeddirect', 4000, spool_env, go)
    wait_line(proc, 'half')
    proc.kill()
    proc.wait()
    repo = Repo(pg_url)
    assert repo.get_run('killeddirect').active            # its lease is not over yet
    refused = subprocess.run([*aim_command(), 'runs', '--repo', pg_url, 'close', '-y',
                              'killeddirect'], capture_output=True, text=True, env=spool_env)
    assert refused.returncode != 0 and 'live client' in refused.stdout + refused.stderr
    # the next process opening the database for writing picks the dead stream up
    subprocess.run([sys.executable, '-c', textwrap.dedent(f'''
        import time
        from aim import Repo, Run
        run = Run(repo={pg_url!r}, system_tracking_interval=None, capture_terminal_logs=False)
        run.close()
        repo = Repo({pg_url!r})
        deadline = time.time() + 60
        while time.time() < deadline and repo.get_run('killeddirect').active:
            time.sleep(0.2)
    ''')], env=spool_env, check=True, timeout=120)
    steps, values = repo.get_run('killeddirect').get_metric(
        'loss', {'subset': 'train'}).values.sparse_numpy()
    assert steps.tolist() == list(range(2000))           # the whole first half, once
    assert values.tolist() == [float(i) for i in range(2000)]
    closed = subprocess.run([*aim_command(), 'runs', '--repo', pg_url, 'close', '-y',
                             'killeddirect'], capture_output=True, text=True, env=spool_env)
    assert closed.returncode == 0, closed.stdout + closed.stderr
    run = Repo(pg_url).get_run('killeddirect')
    assert not run.active and run.end_time is not None
