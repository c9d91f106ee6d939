"""``aim up --repo postgresql://...`` and the UI of ``aim server`` on a PostgreSQL database:
real subprocesses, queries answered by the UI's query worker processes, pages rendered by
a real Chromium; a password in the URL is never printed nor put on a command line."""
from __future__ import annotations

import json
import os
import urllib.request

import psutil
import pytest

from aim import Repo, Run
from tests.web.live_server import aim_up, chromium_page


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture
def pg_repo_with_password(pg_url):
    """The test database's URL with a password in it (the test cluster trusts loopback,
    so any password is accepted), and three runs."""
    url = pg_url.replace('postgresql://aim@', 'postgresql://aim:s3cret-pw@')
    repo = Repo(url, init=True)
    for i in range(3):
        run = Run(repo=repo, experiment='pg', system_tracking_interval=None,
                  capture_terminal_logs=False)
        run['hparams'] = {'lr': 10 ** -(i + 1), 'optimizer': 'adam' if i else 'sgd'}
        for s in range(50):
            run.track(1 / (s + 1) + i, name='loss', step=s, context={'subset': 'train'})
        run.close()
    return url


@pytest.mark.browser
def test_aim_up_serves_a_postgres_repository(pg_repo_with_password):
    url = pg_repo_with_password
    procs: list = []
    with aim_up(url, process=procs) as base:
        body = get(f'{base}/api/runs?params=hparams.optimizer&q=' +
                   urllib.request.quote("run.hparams.optimizer == 'adam'"))
        assert body['total'] == 2
        assert {r['params']['hparams.optimizer'] for r in body['runs']} == {'adam'}
        hashes = ','.join(r['hash'] for r in body['runs'])
        series = get(f'{base}/api/series?runs={hashes}&names=loss&width=100')
        assert len(series['series']) == 2 and all(s['count'] == 50 for s in series['series'])
        metrics = get(f'{base}/api/series?q=' + urllib.request.quote(
            "metric.name == 'loss' and run.hparams.lr < 0.05") + '&width=50')
        assert len(metrics['series']) == 2
        # the query workers got the URL through their environment, not their command line
        children = psutil.Process(procs[0].pid).children(recursive=True)
        assert children, 'aim up runs query worker processes'
        for child in children:
            assert 's3cret-pw' not in ' '.join(child.cmdline())
        with chromium_page() as page:
            page.goto(f'{base}/runs')
            page.wait_for_selector('text=adam', timeout=20_000)
            assert not page.console_errors
    output = procs[0].stdout.read() if procs[0].stdout else ''
    assert 's3cret-pw' not in output


def test_the_server_ui_and_api_on_postgres(pg_repo_with_password, aim_server_factory):
    server = aim_server_factory(pg_repo_with_password)
    assert 's3cret-pw' not in server.output()
    body = get(f'{server.http_url}/api/runs?q=' + urllib.request.quote('run.hparams.lr > 0.005'))
    assert body['total'] == 2
    remote = Repo(server.url)
    assert len(list(remote.query_runs('run.hparams.lr > 0.005').iter_runs())) == 2
    assert os.environ.get('__AIM_QUERY_REPO') is None


@pytest.fixture
def aim_server_factory(tmp_path):
    from tests.remote.server_process import AimServer
    servers = []

    def start(repo: str):
        server = AimServer(repo, str(tmp_path)).start()
        servers.append(server)
        return server
    yield start
    for s in servers:
        s.stop()
