"""Fixtures for MLflow's client against a real ``aim server``.

``aimkit_mlflow``: one ``aim server`` subprocess per test module, with MLflow's client
pointed at it (``mlflow.set_tracking_uri``); ``.url``, ``.repo`` (the repository
directory), ``.artifacts`` (its ``--artifacts-destination``), ``.server``.
``mlflow_own_server``: MLflow's own tracking server on SQLite, when the full ``mlflow``
package is installed (scripts/install_mlflow.sh installs it), else the test is skipped.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

pytest.importorskip('mlflow', reason='MLflow client tests need mlflow: '
                                     'bash scripts/install_mlflow.sh')

from tests.remote.conftest import aim_server  # noqa: F401  (the fixture)
from tests.remote.server_process import AimServer


@dataclass
class Target:
    url: str
    repo: str
    artifacts: str
    server: AimServer


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch):
    # a refused request answers at once instead of being retried for minutes
    monkeypatch.setenv('MLFLOW_HTTP_REQUEST_MAX_RETRIES', '0')
    monkeypatch.setenv('MLFLOW_HTTP_REQUEST_TIMEOUT', '120')
    monkeypatch.setenv('MLFLOW_ENABLE_ASYNC_LOGGING', 'false')
    monkeypatch.setenv('GIT_PYTHON_REFRESH', 'quiet')
    yield
    import mlflow
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(scope='module')
def aimkit_server(tmp_path_factory):
    from aim.sdk.repo import Repo
    workdir = str(tmp_path_factory.mktemp('mlflow-aim'))
    repo = os.path.join(workdir, 'repo')
    os.makedirs(repo)
    Repo.from_path(repo, init=True)
    artifacts = os.path.join(workdir, 'artifacts')
    server = AimServer(repo, workdir, extra_args=['--artifacts-destination', artifacts,
                                                  '--no-ui']).start()
    yield Target(server.http_url, repo, artifacts, server)
    server.stop()


@pytest.fixture
def aimkit_mlflow(aimkit_server, monkeypatch):
    import mlflow
    monkeypatch.setenv('MLFLOW_TRACKING_URI', aimkit_server.url)
    mlflow.set_tracking_uri(aimkit_server.url)
    yield aimkit_server
    while mlflow.active_run() is not None:
        mlflow.end_run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def mlflow_own_server(tmp_path_factory):
    """MLflow's own tracking server on SQLite: (url, process)."""
    try:
        import mlflow.server  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        pytest.skip("MLflow's own server needs the full mlflow package "
                    '(bash scripts/install_mlflow.sh)')
    workdir = str(tmp_path_factory.mktemp('mlflow-own'))
    port = free_port()
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
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()
    shutil.rmtree(workdir, ignore_errors=True)
