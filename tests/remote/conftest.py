"""``aim_server``: start real ``aim server`` subprocesses on free ports.

    server = aim_server()                       # a fresh repository, no tokens
    server = aim_server(repo, tokens={'alice': SECRET}, tls=(cert, key), workers=2,
                        extra_args=['--no-ui'], env={'AIM_UI_QUERY_WORKERS': '1'})
    server.url        # aim://127.0.0.1:PORT (aims:// with tls)
    server.http_url   # http(s)://127.0.0.1:PORT
    server.proc, server.repo, server.port, server.token_file
    server.output()   # what it printed so far, stdout and stderr
    server.stop()     # SIGTERM, wait; returns the exit status
    server.kill()     # SIGKILL to it and every process it started
    server.restart()  # stop (if running) and start again: same port, same repository

Every server still running at the end of the test is stopped.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.remote.server_process import AimServer


@pytest.fixture
def aim_server(tmp_path_factory, backend, request):
    """A factory of running ``aim server`` subprocesses (see the module docstring); in a
    module marked ``backends``, the fresh repository is a directory or a PostgreSQL
    database in turn."""
    servers: list[AimServer] = []

    def start(repo: str | None = None, *, tokens=None, tls=None, workers: int = 1,
              extra_args=(), env=None) -> AimServer:
        workdir = str(tmp_path_factory.mktemp('aim-server'))
        if repo is None and backend == 'postgresql':
            repo = request.getfixturevalue('pg_url')
        if repo is None:
            from aim.sdk.repo import Repo
            repo = os.path.join(workdir, 'repo')
            os.makedirs(repo)
            Repo.from_path(repo, init=True)
        server = AimServer(repo, workdir, tokens=tokens, tls=tls, workers=workers,
                           extra_args=extra_args, env=env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope='session')
def self_signed_cert(tmp_path_factory):
    """(certificate, key) for 127.0.0.1 and localhost, made with the openssl command."""
    import shutil
    openssl = shutil.which('openssl')
    if openssl is None:
        pytest.skip('the openssl command is not installed; it makes the test certificate')
    where = tmp_path_factory.mktemp('tls')
    cert, key = str(where / 'cert.pem'), str(where / 'key.pem')
    subprocess.run([openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                    '-subj', '/CN=localhost', '-addext',
                    'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert],
                   check=True, capture_output=True)
    return cert, key
