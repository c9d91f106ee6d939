"""`aim up --repo aim://HOST:PORT`: the UI of a server through a local proxy."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time

from click.testing import CliRunner

from aim.cli.main import cli
from tests.remote.server_process import REPO_ROOT, aim_command

ALICE = 'alice-secret-0123456789abcdef'


def _start_up(url: str, env: dict) -> tuple[subprocess.Popen, int]:
    import os
    full = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    full.update(env, PYTHONPATH=REPO_ROOT, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([*aim_command(), 'up', '--repo', url, '--port', '0'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=full)
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if 'running at ' in line:
            return proc, int(line.split('running at ', 1)[1].split()[0].rsplit(':', 1)[1]
                             .rstrip('/'))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError('aim up did not start:\n' + ''.join(seen))


def _get(port: int, path: str, method: str = 'GET', headers=None, body=None):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_aim_up_browses_the_runs_of_a_server(aim_server, tmp_path):
    from aim import Run
    from aim.sdk.repo import Repo
    repo = str(tmp_path / 'served')
    Repo.from_path(repo, init=True)
    run = Run(repo=repo, experiment='remote-exp', system_tracking_interval=None,
              capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.01}
    run.track(1.5, name='loss', step=0)
    run_hash = run.hash
    run.close()

    server = aim_server(repo, tokens={'alice': ALICE})
    proc, port = _start_up(server.url, {'AIM_REMOTE_TOKEN': ALICE})
    try:
        status, _, body = _get(port, '/api/runs?params=*')
        assert status == 200, body
        assert run_hash in body.decode()
        status, headers, body = _get(port, '/')
        assert status == 200 and headers['content-type'].startswith('text/html')
        assert 'set-cookie' not in {k.lower() for k in headers}
        # edits: the page's write token works through the proxy, another origin does not
        write_token = json.loads(_get(port, '/api/status')[2])['write_token']
        edit = json.dumps({'description': 'through the proxy'})
        status, _, body = _get(port, f'/api/runs/{run_hash}', 'PATCH',
                               {'X-Aim-Token': write_token,
                                'Content-Type': 'application/json',
                                'Origin': f'http://127.0.0.1:{port}'}, edit)
        assert status == 200, body
        status, _, body = _get(port, f'/api/runs/{run_hash}')
        assert 'through the proxy' in body.decode()
        status, _, _ = _get(port, '/api/runs/archive', 'POST',
                            {'X-Aim-Token': write_token, 'Origin': 'http://evil.example',
                             'Content-Type': 'application/json'},
                            json.dumps({'hashes': [run_hash]}))
        assert status == 403
        # a name that is not the proxy's (DNS rebinding) is refused
        assert _get(port, '/api/status', headers={'Host': 'evil.example'})[0] == 421
        # the server went away: 502 with a message, not a hang
        server.kill()
        status, _, body = _get(port, '/api/status')
        assert status == 502 and 'RemoteUnavailable' in body.decode()
    finally:
        proc.terminate()
        proc.wait(10)


def test_aim_up_with_a_closed_port_says_what_to_do():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(cli, ['up', '--repo', f'aim://127.0.0.1:{port}', '--port', '0'])
    assert result.exit_code != 0
    assert f'Cannot reach the aim server at aim://127.0.0.1:{port}' in result.output
    assert '`aim server`' in result.output


def test_aim_up_with_a_refused_token_says_what_to_do(aim_server, monkeypatch):
    server = aim_server(tokens={'alice': ALICE})
    result = CliRunner().invoke(cli, ['up', '--repo', server.url, '--port', '0'])
    assert result.exit_code != 0
    assert 'needs an access token (401)' in result.output and 'AIM_REMOTE_TOKEN' in result.output
    monkeypatch.setenv('AIM_REMOTE_TOKEN', ALICE + 'x')
    result = CliRunner().invoke(cli, ['up', '--repo', server.url, '--port', '0'])
    assert result.exit_code != 0 and 'refused the token' in result.output
    assert ALICE not in result.output


def test_aim_up_says_when_the_server_has_no_ui(aim_server):
    server = aim_server(extra_args=['--no-ui'])
    result = CliRunner().invoke(cli, ['up', '--repo', server.url, '--port', '0'])
    assert result.exit_code != 0 and '--no-ui' in result.output


def test_a_bad_url_is_refused():
    result = CliRunner().invoke(cli, ['up', '--repo', 'aim://host:notaport'])
    assert result.exit_code != 0 and 'aims://HOST[:PORT]' in result.output
