"""Cross-site use of the write endpoints, response headers, request bounds and the access
token (FastAPI's TestClient for headers and sizes, a real `aim up` for the token)."""
from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from aim import Repo
from aim.cli.main import cli
from aim.web.app import create_app
from tests.web.live_server import aim_up
from tests.web.repo_factory import build_repo

OWN = 'http://127.0.0.1:43800'
TOKEN = 'k3y-0f-this-server-for-the-tests'


@pytest.fixture
def small_repo(tmp_path):
    return str(tmp_path), build_repo(str(tmp_path), n_runs=2, steps=5)


@pytest.fixture
def client(small_repo):
    with TestClient(create_app(Repo(small_repo[0])), base_url=OWN) as c:
        yield c


def _writes(hashes):
    """(method, path, json body) of every write endpoint."""
    return [('PATCH', f'/api/runs/{hashes[0]}', {'name': 'changed', 'tags': ['x']}),
            ('POST', '/api/runs/archive', {'hashes': hashes}),
            ('POST', '/api/runs/delete', {'hashes': hashes[:1]}),
            ('DELETE', f'/api/runs/{hashes[1]}', None)]


def _unchanged(client, hashes):
    runs = {r['hash']: r for r in client.get('/api/runs').json()['runs']}
    assert sorted(runs) == sorted(hashes)
    assert all(not r['archived'] and r['name'] != 'changed' for r in runs.values())


def _token(client) -> str:
    return client.get('/api/status').json()['write_token']


def test_a_write_without_the_write_token_is_refused(client, small_repo):
    """What a no-cors fetch of another page can send: no Origin check helps an old browser,
    and a Blob body has no content type, which FastAPI reads as JSON."""
    _, hashes = small_repo
    for method, path, body in _writes(hashes):
        r = client.request(method, path, content=json.dumps(body) if body else None)
        assert r.status_code == 403, (method, path, r.text)
        error = r.json()['error']
        assert error['type'] == 'MissingWriteToken' and 'X-Aim-Token' in error['message']
        assert '/api/status' in error['message']
    _unchanged(client, hashes)


@pytest.mark.parametrize('headers, kind', [
    ({'Sec-Fetch-Site': 'cross-site'}, 'CrossSiteRequest'),
    ({'Sec-Fetch-Site': 'same-site'}, 'CrossSiteRequest'),
    ({'Origin': 'http://evil.example'}, 'CrossOriginRequest'),
    ({'Origin': 'http://127.0.0.1:9999'}, 'CrossOriginRequest'),
    ({'Origin': 'null'}, 'CrossOriginRequest'),
])
def test_cross_site_writes_are_refused_even_with_the_token(client, small_repo, headers, kind):
    _, hashes = small_repo
    headers = dict(headers, **{'X-Aim-Token': _token(client)})
    for method, path, body in _writes(hashes):
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 403, (method, path, r.text)
        error = r.json()['error']
        assert error['type'] == kind and 'another' in error['message']
    _unchanged(client, hashes)


def test_the_page_carries_the_token_and_its_writes_work(client, small_repo):
    _, hashes = small_repo
    page = client.get('/runs').text
    token = _token(client)
    assert f'<meta name="aim-write-token" content="{token}">' in page
    browser = {'Origin': OWN, 'Sec-Fetch-Site': 'same-origin', 'X-Aim-Token': token}
    r = client.patch(f'/api/runs/{hashes[0]}', json={'name': 'renamed'}, headers=browser)
    assert r.status_code == 200 and r.json()['props']['name'] == 'renamed'
    r = client.post('/api/runs/delete', json={'hashes': [hashes[1]]}, headers=browser)
    assert r.status_code == 200
    assert client.get('/api/runs').json()['total'] == 1


def test_reads_need_nothing_on_loopback(client):
    for path in ('/api/status', '/api/runs', '/api/series', '/runs', '/static/js/app.js'):
        assert client.get(path).status_code == 200, path


def test_every_response_carries_the_policy_and_nosniff(client, small_repo):
    for path in ('/api/status', '/runs', '/static/js/app.js', '/api/nothing-here',
                 f'/api/runs/{small_repo[1][0]}', '/docs', '/openapi.json'):
        r = client.get(path)
        assert r.headers['x-content-type-options'] == 'nosniff', path
        assert "default-src 'self'" in r.headers['content-security-policy'], path
        assert "frame-ancestors 'none'" in r.headers['content-security-policy'], path
    page = client.get('/runs').headers['content-security-policy']
    assert 'unsafe-inline' not in page and 'http' not in page
    r = client.post('/api/runs/delete', json={'hashes': []})  # a refusal carries them too
    assert r.status_code == 403 and r.headers['x-content-type-options'] == 'nosniff'


def test_request_sizes_are_bounded(client, small_repo):
    _, hashes = small_repo
    client.headers['X-Aim-Token'] = _token(client)
    # 10,000 tags of 1,000 characters: 10 MB, refused before parsing
    r = client.patch(f'/api/runs/{hashes[0]}', json={'tags': ['t' * 1000] * 10_000})
    assert r.status_code == 413, r.text
    assert r.json()['error']['type'] == 'RequestTooLarge'
    assert '1048576 bytes' in r.json()['error']['message']

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b' ' * 100_000
    r = client.post('/api/runs/delete', content=chunks(),
                    headers={'content-type': 'application/json'})
    assert r.status_code == 413

    cases = [
        ('PATCH', f'/api/runs/{hashes[0]}', {'tags': [f't{i}' for i in range(101)]},
         'at most 100 items'),
        ('PATCH', f'/api/runs/{hashes[0]}', {'tags': ['t' * 201]}, 'at most 200 characters'),
        ('PATCH', f'/api/runs/{hashes[0]}', {'name': 'n' * 1001}, 'at most 1000 characters'),
        ('PATCH', f'/api/runs/{hashes[0]}', {'description': 'd' * 100_001},
         'at most 100000 characters'),
        ('POST', '/api/runs/delete', {'hashes': ['h'] * 1001}, 'at most 1000 items'),
        ('POST', '/api/runs/archive', {'hashes': ['h' * 65]}, 'at most 64 characters'),
    ]
    for method, path, body, limit in cases:
        r = client.request(method, path, json=body)
        assert r.status_code == 422, (path, r.text)
        assert limit in r.json()['error']['message'], r.json()['error']['message']
    r = client.get('/api/runs', params={'q': 'run.seed > 0 ' + ' ' * 10_000})
    assert r.status_code == 422 and 'at most 10000 characters' in r.json()['error']['message']
    _unchanged(client, hashes)
    # within the limits, edits still work
    r = client.patch(f'/api/runs/{hashes[0]}', json={'tags': [f't{i}' for i in range(100)]})
    assert r.status_code == 200 and len(r.json()['props']['tags']) == 100


def test_access_token(small_repo):
    path, hashes = small_repo
    app = create_app(Repo(path), auth_token=TOKEN)
    with TestClient(app, base_url=OWN, follow_redirects=False) as c:
        for url in ('/api/status', '/runs', '/static/js/app.js', '/openapi.json'):
            r = c.get(url)
            assert r.status_code == 401, url
            assert r.json()['error']['type'] == 'Unauthorized'
            assert '?token=' in r.json()['error']['message']
        assert c.get('/api/status', headers={'Authorization': 'Bearer wrong'}).status_code \
            == 401
        bearer = {'Authorization': f'Bearer {TOKEN}'}
        assert c.get('/api/status', headers=bearer).status_code == 200
        # a script holding the access token may write without the write token
        r = c.patch(f'/api/runs/{hashes[0]}', json={'name': 'by-script'}, headers=bearer)
        assert r.status_code == 200
        # ... but not from another site's page
        r = c.patch(f'/api/runs/{hashes[0]}', json={'name': 'evil'},
                    headers=dict(bearer, Origin='http://evil.example'))
        assert r.status_code == 403
        # the browser signs in once with ?token=: a cookie, and the address loses the token
        r = c.get('/metrics', params={'token': TOKEN, 'q': 'x'})
        assert r.status_code == 303 and r.headers['location'] == '/metrics?q=x'
        cookie = r.headers['set-cookie']
        assert 'HttpOnly' in cookie and 'SameSite=Strict' in cookie
        assert c.get('/api/status').status_code == 200  # the cookie jar now holds it
        c.cookies.clear()
        assert c.get('/metrics', params={'token': 'wrong'}).status_code == 401
        # API addresses do not sign in (a token in an address ends up in logs)
        assert c.get('/api/status', params={'token': TOKEN}).status_code == 401


def test_a_non_loopback_host_needs_a_token(repo_dir, tmp_path):
    result = CliRunner().invoke(cli, ['up', '--repo', repo_dir, '--host', '0.0.0.0',
                                      '--port', '0'])
    assert result.exit_code != 0
    assert 'needs an access token' in result.output and '--token-file' in result.output
    short = tmp_path / 'short'
    short.write_text('abc\n')
    result = CliRunner().invoke(cli, ['up', '--repo', repo_dir, '--host', '0.0.0.0',
                                      '--token-file', str(short)])
    assert result.exit_code != 0 and 'at least 16 characters' in result.output
    result = CliRunner().invoke(cli, ['up', '--repo', repo_dir, '--host', '0.0.0.0',
                                      '--token-file', str(tmp_path / 'missing')])
    assert result.exit_code != 0 and 'Cannot read the token file' in result.output


def test_a_real_server_with_a_token_file(small_repo, tmp_path):
    path, _ = small_repo
    token_file = tmp_path / 'token'
    token_file.write_text(TOKEN + '\n')
    os.chmod(token_file, 0o600)
    with aim_up(path, '--token-file', str(token_file)) as url:
        assert httpx.get(url + '/api/status').status_code == 401
        r = httpx.get(url + '/api/status', headers={'Authorization': f'Bearer {TOKEN}'})
        assert r.status_code == 200 and r.json()['total_runs'] == 2


def test_a_sort_key_with_a_line_break_is_a_clear_error(client):
    r = client.get('/api/runs', params={'sort': 'name\nhash'})
    assert r.status_code == 400, r.text
    assert r.json()['error']['type'] == 'InvalidSort' and 'one line' in r.json()['error']['message']


@contextlib.contextmanager
def _serving(html: str):
    """Another web app on this machine (another port: another origin) serving ``html``."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header('Content-Type', 'text/html')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/'
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists('/usr/bin/chromium'), reason='needs /usr/bin/chromium')
def test_another_sites_page_cannot_delete_runs(small_repo):
    """A real Chromium on a page of another local web app (another port) sends what a page
    can send without CORS: a no-cors POST with a type-less JSON body, a no-cors DELETE
    (stopped by the browser's preflight) and a text/plain form."""
    from tests.web.live_server import chromium_page
    path, hashes = small_repo
    with aim_up(path) as url, chromium_page() as page:
        attack = f'''<!doctype html><form id="f" method="post" enctype="text/plain"
            action="{url}/api/runs/archive"><input name='{{"hashes":["{hashes[1]}"],"x":"'
            value='"}}'></form><script>
          window.attack = () => Promise.allSettled([
            fetch('{url}/api/runs/delete', {{method: 'POST', mode: 'no-cors',
              body: new Blob([JSON.stringify({{hashes: ['{hashes[0]}']}})])}}),
            fetch('{url}/api/runs/{hashes[1]}', {{method: 'DELETE', mode: 'no-cors'}}),
          ]).then((r) => r.map((x) => x.status));
        </script>'''
        with _serving(attack) as attacker:
            page.goto(attacker)
            page.console_errors.clear()
            assert page.evaluate('() => window.attack()') == ['fulfilled', 'rejected']
            with page.expect_navigation():
                page.evaluate("() => document.getElementById('f').submit()")
        runs = httpx.get(url + '/api/runs').json()['runs']
        assert sorted(r['hash'] for r in runs) == sorted(hashes)
        assert not any(r['archived'] for r in runs)
