"""`aim server`: tokens, TLS, several workers and signals, against real subprocesses."""
from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import time

import pytest
from click.testing import CliRunner

from aim.cli.main import cli
from aim.remote.auth import load_tokens

ALICE = 'alice-secret-0123456789abcdef'
BOB = 'bob-secret-0123456789abcdefghij'
HELLO = '/api/remote/v1/hello'


def get(server, path, headers=None, context=None):
    if server.tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            '127.0.0.1', server.port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10)
    try:
        conn.request('GET', path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def bearer(secret):
    return {'Authorization': f'Bearer {secret}'}


# --- refusals at start (no server needed: CliRunner) -------------------------------------
def test_a_host_other_than_loopback_needs_a_token_file(repo_dir):
    result = CliRunner().invoke(cli, ['server', '--repo', repo_dir, '--host', '0.0.0.0',
                                      '--port', '0'])
    assert result.exit_code != 0
    assert 'needs access tokens' in result.output
    assert '--token-file' in result.output and 'chmod 600' in result.output


def test_a_directory_without_a_repository_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ['server', '--repo', str(tmp_path), '--port', '0'])
    assert result.exit_code != 0
    assert 'holds no .aim repository' in result.output and 'aim init' in result.output


def test_https_needs_both_files(repo_dir, tmp_path):
    key = tmp_path / 'key.pem'
    key.write_text('x')
    result = CliRunner().invoke(cli, ['server', '--repo', repo_dir, '--ssl-keyfile', str(key)])
    assert result.exit_code != 0 and 'both --ssl-keyfile and --ssl-certfile' in result.output


def _token_file(tmp_path, text, mode=0o600):
    path = tmp_path / 'tokens'
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def test_token_file_formats(tmp_path):
    path = _token_file(tmp_path, f'# team tokens\n\nalice:{ALICE}\n  {BOB}  \n'
                                 f'ci.bot@x-1 : {ALICE[::-1]}\n{BOB[::-1]}\n')
    assert load_tokens(path) == {'alice': ALICE, 'token-1': BOB, 'ci.bot@x-1': ALICE[::-1],
                                 'token-2': BOB[::-1]}


@pytest.mark.parametrize('text, line, what', [
    ('alice:short-secret\n', 1, 'at least 16'),
    (f'# c\n\nalice:{ALICE}\nbob:{ALICE}\n', 4, 'line 3'),
    (f'alice:{ALICE}\nalice:{BOB}\n', 2, "'alice' is taken"),
    (f'al ice:{ALICE}\n', 1, 'name before ":"'),
    (f'alice:{ALICE} {BOB}\n', 1, 'one word'),
    (f'{"n" * 65}:{ALICE}\n', 1, '1 to 64'),
])
def test_token_file_errors_name_the_line_and_hide_the_secret(tmp_path, text, line, what):
    path = _token_file(tmp_path, text)
    with pytest.raises(ValueError) as caught:
        load_tokens(path)
    message = str(caught.value)
    assert f'{path}, line {line}:' in message and what in message
    for secret in (ALICE, BOB, 'short-secret'):
        assert secret not in message
    result = CliRunner().invoke(cli, ['server', '--token-file', path, '--port', '0'])
    assert result.exit_code != 0 and f'line {line}' in result.output
    assert ALICE not in result.output and BOB not in result.output


def test_an_empty_token_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match='holds no token'):
        load_tokens(_token_file(tmp_path, '# nothing yet\n\n'))


def test_a_token_file_others_can_read_is_refused(tmp_path, caplog):
    with pytest.raises(ValueError, match='chmod 600'):
        load_tokens(_token_file(tmp_path, f'alice:{ALICE}\n', mode=0o644))
    with caplog.at_level('WARNING', logger='aim.server'):
        assert load_tokens(_token_file(tmp_path, f'alice:{ALICE}\n', mode=0o640))
    assert 'read by its group' in caplog.text and ALICE not in caplog.text


# --- a running server ---------------------------------------------------------------------
def test_requests_need_one_of_the_tokens(aim_server):
    server = aim_server(tokens={'alice': ALICE, 'bob': BOB})
    assert 'Accepted tokens: alice, bob' in server.output()
    assert ALICE not in server.output() and BOB not in server.output()

    status, headers, body = get(server, HELLO)
    assert status == 401 and headers['www-authenticate'] == 'Bearer'
    detail = json.loads(body)['detail']
    assert 'carried none' in detail and 'AIM_REMOTE_TOKEN' in detail
    assert 'credentials' in detail

    status, _, body = get(server, HELLO, bearer(ALICE + 'x'))
    assert status == 401 and 'not one of this server' in json.loads(body)['detail']
    assert get(server, HELLO, {'Authorization': f'Basic {ALICE}'})[0] == 401

    for secret in (ALICE, BOB):
        status, _, body = get(server, HELLO, bearer(secret))
        assert status == 200 and json.loads(body)['server'] == 'aimkit'


def test_the_ui_takes_the_token_once_in_the_address(aim_server):
    server = aim_server(tokens={'alice': ALICE})
    assert get(server, '/api/status')[0] == 401
    assert get(server, '/api/status', bearer(ALICE))[0] == 200
    status, headers, _ = get(server, f'/runs?token={ALICE}&q=x')
    assert status == 303 and headers['location'] == '/runs?q=x'
    cookie = headers['set-cookie'].split(';')[0]
    assert get(server, '/api/status', {'Cookie': cookie})[0] == 200
    # the tracking API is for programs: the header only
    assert get(server, HELLO, {'Cookie': cookie})[0] == 401
    assert get(server, f'{HELLO}?token={ALICE}')[0] == 401


def test_token_names_are_logged_once_without_secrets(aim_server):
    server = aim_server(tokens={'alice': ALICE, 'bob': BOB})
    for _ in range(3):
        assert get(server, HELLO, bearer(ALICE))[0] == 200
    assert get(server, HELLO, bearer(BOB))[0] == 200
    time.sleep(0.3)
    out = server.output()
    assert out.count("first request with the token 'alice'") == 1
    assert out.count("first request with the token 'bob'") == 1
    assert ALICE not in out and BOB not in out


def test_the_tracking_api_refuses_web_pages(aim_server):
    server = aim_server()
    assert get(server, HELLO)[0] == 200
    assert get(server, HELLO, {'Origin': 'http://evil.example'})[0] == 403
    assert get(server, HELLO, {'Sec-Fetch-Site': 'cross-site'})[0] == 403


def test_no_ui_serves_the_tracking_api_only(aim_server):
    server = aim_server(extra_args=['--no-ui'])
    assert 'UI:' not in server.output()
    assert get(server, HELLO)[0] == 200
    status, _, body = get(server, '/api/status')
    assert status == 404 and '--no-ui' in json.loads(body)['detail']


def test_tls_with_the_ca_bundle_and_without(aim_server, self_signed_cert, monkeypatch):
    from aim.remote.credentials import settings_for
    cert, key = self_signed_cert
    server = aim_server(tls=(cert, key), tokens={'alice': ALICE})
    assert 'listening on https://127.0.0.1:' in server.output()
    url = f'aims://127.0.0.1:{server.port}'
    monkeypatch.setenv('AIM_REMOTE_TOKEN', ALICE)
    monkeypatch.setenv('AIM_REMOTE_CA_BUNDLE', cert)
    settings = settings_for(url)
    assert settings.tls and settings.token == ALICE
    status, _, body = get(server, HELLO, bearer(settings.token), settings.ssl_context)
    assert status == 200 and json.loads(body)['server'] == 'aimkit'

    monkeypatch.delenv('AIM_REMOTE_CA_BUNDLE')
    settings = settings_for(url)
    with pytest.raises(ssl.SSLCertVerificationError):
        get(server, HELLO, bearer(settings.token), settings.ssl_context)


def _children(pid, marker=b'spawn_main'):
    """Child processes of ``pid`` whose command line holds ``marker`` (uvicorn's workers,
    not multiprocessing's resource tracker)."""
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    if int(f.read().rsplit(')', 1)[1].split()[1]) != pid:
                        continue
                with open(f'/proc/{entry}/cmdline', 'rb') as f:
                    if marker in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not os.path.isdir('/proc'), reason='reads child processes from /proc')
def test_several_workers_serve_one_socket(aim_server):
    server = aim_server(workers=2, tokens={'alice': ALICE})
    deadline = time.monotonic() + 20
    while len(_children(server.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = _children(server.proc.pid)
    assert len(workers) == 2, server.output()
    for _ in range(10):
        assert get(server, HELLO, bearer(ALICE))[0] == 200
    assert get(server, '/api/status', bearer(ALICE))[0] == 200
    # one worker gone: the other still answers on the same socket
    os.kill(workers[0], signal.SIGKILL)
    for _ in range(5):
        assert get(server, HELLO, bearer(ALICE))[0] == 200
    assert server.stop() == 0


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_with_status_0(aim_server, sig):
    server = aim_server()
    assert get(server, '/api/status')[0] == 200
    started = time.monotonic()
    server.proc.send_signal(sig)
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5


def test_restart_keeps_the_port_and_the_repository(aim_server):
    server = aim_server()
    port, repo = server.port, server.repo
    server.restart()
    assert (server.port, server.repo) == (port, repo)
    assert get(server, HELLO)[0] == 200
    server.kill()
    assert server.proc.returncode == -signal.SIGKILL
