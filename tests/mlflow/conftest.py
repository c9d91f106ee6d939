"""Fixtures for MLflow's client against a real ``aim server``.

``aimkit_mlflow``: one ``aim server`` subprocess per test module, with MLflow's client
pointed at it (``mlflow.set_tracking_uri``); ``.url``, ``.repo`` (the repository
directory), ``.artifacts`` (its ``--artifacts-destination``), ``.server``.
``mlflow_own_server`` (tests/conftest.py): MLflow's own tracking server, one per session.
"""
from __future__ import annotations

import os
import socket
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
