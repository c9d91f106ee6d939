"""Edits and deletes through the API, and their refusal in read-only mode."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from aim import Repo
from aim.web.app import create_app
from tests.web.repo_factory import build_repo


def editing(client: TestClient) -> TestClient:
    """A client that sends the server's write token, as a script does."""
    client.headers['X-Aim-Token'] = client.get('/api/status').json()['write_token']
    return client


pytestmark = pytest.mark.backends


@pytest.fixture
def small_repo(repo_location):
    """Two runs in a directory or a PostgreSQL database: (path or URL, hashes)."""
    hashes = build_repo(repo_location, n_runs=2, steps=20)
    return repo_location, hashes


def test_edit_name_description_tags_and_archive(small_repo):
    path, hashes = small_repo
    with editing(TestClient(create_app(Repo(path)))) as client:
        r = client.patch(f'/api/runs/{hashes[1]}', json={'name': 'renamed', 'description': 'd',
                                                          'tags': ['a', 'b']})
        assert r.status_code == 200, r.text
        props = r.json()['props']
        assert (props['name'], props['description'], sorted(props['tags'])) == \
            ('renamed', 'd', ['a', 'b'])
        r = client.patch(f'/api/runs/{hashes[1]}', json={'archived': True, 'tags': ['b']})
        assert r.json()['props']['archived'] is True and r.json()['props']['tags'] == ['b']
        assert client.get('/api/runs', params={'archived': False}).json()['total'] == 1
    run = Repo(path).get_run(hashes[1])
    assert run.name == 'renamed' and run.archived and list(run.tags) == ['b']


def test_delete_one_and_many(small_repo):
    path, hashes = small_repo
    with editing(TestClient(create_app(Repo(path)))) as client:
        assert client.delete(f'/api/runs/{hashes[0]}').json() == {'deleted': [hashes[0]]}
        assert client.get(f'/api/runs/{hashes[0]}').status_code == 404
        r = client.post('/api/runs/delete', json={'hashes': [hashes[1], 'nope']})
        assert r.status_code == 404 and 'nope' in r.json()['error']['message']
        assert client.post('/api/runs/delete', json={'hashes': [hashes[1]]}).status_code == 200
        assert client.get('/api/runs').json()['total'] == 0


def test_read_only_refuses_every_edit(small_repo):
    path, hashes = small_repo
    with editing(TestClient(create_app(Repo(path), read_only=True))) as client:
        assert client.get('/api/status').json()['read_only'] is True
        for response in (client.patch(f'/api/runs/{hashes[0]}', json={'name': 'x'}),
                         client.delete(f'/api/runs/{hashes[0]}'),
                         client.post('/api/runs/delete', json={'hashes': hashes}),
                         client.post('/api/runs/archive', json={'hashes': hashes})):
            assert response.status_code == 403
            assert response.json()['error']['type'] == 'ReadOnlyError'
        assert client.get('/api/runs').json()['total'] == 2


def test_edits_need_a_json_body(small_repo):
    """A cross-site form or no-cors fetch can only send text/plain: it must change nothing."""
    import json as _json
    path, hashes = small_repo
    with editing(TestClient(create_app(Repo(path)))) as client:
        body = _json.dumps({'hashes': [hashes[0]]})
        r = client.post('/api/runs/delete', content=body, headers={'content-type': 'text/plain'})
        assert r.status_code == 422
        r = client.patch(f'/api/runs/{hashes[0]}', content=_json.dumps({'name': 'x'}),
                         headers={'content-type': 'text/plain'})
        assert r.status_code == 422
        assert client.get('/api/runs').json()['total'] == 2


def test_loopback_server_refuses_other_host_names(small_repo):
    from aim.web.server import allowed_hosts_for
    path, _ = small_repo
    app = create_app(Repo(path), allowed_hosts=allowed_hosts_for('127.0.0.1'))
    with TestClient(app, base_url='http://127.0.0.1:43800') as client:
        assert client.get('/api/status').status_code == 200
        r = client.get('/api/status', headers={'host': 'evil.example:43800'})
        assert r.status_code == 400 and r.json()['error']['type'] == 'InvalidHost'
        assert client.get('/api/status', headers={'host': 'localhost:43800'}).status_code == 200
    assert allowed_hosts_for('0.0.0.0') is None
