"""Fixtures shared by every test: an isolated repository and a clean environment."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    for key in list(os.environ):
        if key.startswith('AIM_') or key.startswith('__AIM_'):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def child_env():
    """Environment for a child Python that must import this checkout's `aim`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    env['PYTHONUNBUFFERED'] = '1'
    return env


@pytest.fixture
def python():
    """The interpreter running the tests, for child processes."""
    return sys.executable


@pytest.fixture
def repo_dir(tmp_path):
    """A directory holding a fresh repository."""
    from aim import Repo
    Repo(str(tmp_path), init=True)
    return str(tmp_path)


def pytest_generate_tests(metafunc):
    """Tests of a module marked ``pytest.mark.backends`` that use ``repo`` (or ``backend``)
    run against both repository backends: SQLite and PostgreSQL."""
    if 'backend' in metafunc.fixturenames and metafunc.definition.get_closest_marker('backends'):
        # a test of SQLite's own files (``sqlite_only``) keeps to that backend
        both = not metafunc.definition.get_closest_marker('sqlite_only')
        metafunc.parametrize('backend', ['sqlite', 'postgresql'] if both else ['sqlite'],
                             indirect=True)


@pytest.fixture
def backend(request):
    return getattr(request, 'param', 'sqlite')


@pytest.fixture(scope='session')
def pg_cluster():
    """One PostgreSQL server for the whole session (tests/pg/cluster.py), with a template
    database that holds the aimkit tables, so that each test's database is a quick copy."""
    from aim.storage.pg_repository import PgRepoStore
    from tests.pg.cluster import PgCluster
    cluster = PgCluster().start()
    store = PgRepoStore(cluster.create_database('aim_template'), create=True)
    store.close()
    cluster.template = 'aim_template'
    yield cluster
    cluster.cleanup()


_pg_databases = iter(range(1, 1 << 30))


@pytest.fixture
def pg_url(pg_cluster):
    """A fresh PostgreSQL repository (its own database) for one test."""
    from tests.pg.cluster import create_database_from_template
    name = f'aim_t{next(_pg_databases)}_{os.getpid()}'
    url = create_database_from_template(pg_cluster, name)
    yield url
    from aim.sdk import repo as repo_module
    with repo_module._pool_lock:
        cached = repo_module._pool.pop(url, None)
    if cached is not None:
        cached.close()
    pg_cluster.drop_database(name)


@pytest.fixture
def repo_location(backend, request):
    """Where a fresh repository is: a directory, or a PostgreSQL URL (``backend``)."""
    if backend == 'postgresql':
        return request.getfixturevalue('pg_url')
    return request.getfixturevalue('repo_dir')


@pytest.fixture
def repo(backend, request):
    from aim import Repo
    if backend == 'postgresql':
        return Repo.from_path(request.getfixturevalue('pg_url'))
    return Repo.from_path(request.getfixturevalue('repo_dir'))


@pytest.fixture
def make_run(repo):
    """Create runs with side channels off; every run is closed after the test."""
    from aim import Run
    runs = []

    def make(**kwargs):
        kwargs.setdefault('repo', repo)
        kwargs.setdefault('system_tracking_interval', None)
        kwargs.setdefault('capture_terminal_logs', False)
        run = Run(**kwargs)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.close()


@pytest.fixture(scope='session')
def mlflow_own_server(tmp_path_factory):
    """MLflow's own tracking server on SQLite (its url), when the full ``mlflow`` package is
    installed (scripts/install_mlflow.sh), else the test is skipped. One per session: its
    start-up takes most of a minute on a busy machine (tests/mlflow and bench_mlflow's
    quick mode share it; each uses experiments of its own)."""
    import shutil
    import socket
    import subprocess
    import time
    try:
        import mlflow.server  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        pytest.skip("MLflow's own server needs the full mlflow package "
                    '(bash scripts/install_mlflow.sh)')
    workdir = str(tmp_path_factory.mktemp('mlflow-own'))
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, '-m', 'mlflow', 'server', '--host', '127.0.0.1', '--port',
           str(port), '--backend-store-uri', f'sqlite:///{workdir}/mlflow.db',
           '--artifacts-destination', os.path.join(workdir, 'artifacts'), '--workers', '1']
    log = open(os.path.join(workdir, 'server.log'), 'w')
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                            start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 120
    import urllib.request
    while True:
        try:
            urllib.request.urlopen(url + '/health', timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                text = open(os.path.join(workdir, 'server.log')).read()[-3000:]
                pytest.skip(f"MLflow's own server did not start: {text}")
            time.sleep(0.3)
    yield url
    import signal
    try:  # its workers take 10 s or more to stop on SIGTERM; nothing of it is kept
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    log.close()
    shutil.rmtree(workdir, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    live = sys.modules.get('tests.web.live_server')
    if live is not None:   # the session's Chromium (tests/web/live_server.py)
        live.close_shared_browser()
