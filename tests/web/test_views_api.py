"""Saved views (/api/views), the experiments summary (/api/experiments/summary) and the run
comparison (/api/compare), in process on SQLite repositories (tests/pg has the same on
PostgreSQL)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from aim import Repo
from aim.web.app import create_app
from tests.web.repo_factory import XSS_NAME, quiet_run

TOKEN = 'test-write-token'
H = {'X-Aim-Token': TOKEN}


def _client(path, **kwargs) -> TestClient:
    return TestClient(create_app(Repo(path), write_token=TOKEN, **kwargs))


def check_views_round_trip(location) -> None:
    """Save, list, rename, delete; a saved view outlives the server (a new app on a new
    Repo object reads it back)."""
    client = _client(location)
    assert client.get('/api/views').json() == {'views': [], 'read_only': False}
    made = client.post('/api/views', json={'name': f'  {XSS_NAME}  ', 'description': 'lr sweep',
                                           'path': '/metrics?q=run.hparams.lr%3E0&smooth=0.6'},
                       headers=H)
    assert made.status_code == 201
    view = made.json()
    assert view['name'] == XSS_NAME and view['description'] == 'lr sweep'
    assert view['path'] == '/metrics?q=run.hparams.lr%3E0&smooth=0.6'
    second = client.post('/api/views', json={'name': 'a run', 'path': '/runs/abc123'},
                         headers=H).json()
    client.close()

    client = _client(location)    # "restart": nothing kept in memory
    views = client.get('/api/views').json()['views']
    assert [v['id'] for v in views] == [second['id'], view['id']]     # newest first
    renamed = client.patch(f'/api/views/{view["id"]}', json={'name': 'sweep'}, headers=H)
    assert renamed.status_code == 200 and renamed.json()['name'] == 'sweep'
    assert renamed.json()['path'] == view['path']
    assert client.delete(f'/api/views/{second["id"]}', headers=H).json() == \
        {'deleted': second['id']}
    assert [v['name'] for v in client.get('/api/views').json()['views']] == ['sweep']
    assert client.delete(f'/api/views/{second["id"]}', headers=H).status_code == 404
    client.close()


def test_views_round_trip_and_restart(repo_dir):
    check_views_round_trip(repo_dir)


@pytest.mark.parametrize('body, field', [
    ({'name': '', 'path': '/runs'}, 'name'),
    ({'name': '   ', 'path': '/runs'}, 'name'),
    ({'name': 'x' * 201, 'path': '/runs'}, 'name'),
    ({'name': 'two\nlines', 'path': '/runs'}, 'name'),
    ({'name': 5, 'path': '/runs'}, 'name'),
    ({'name': 'v', 'path': '/runs', 'description': 'd' * 2001}, 'description'),
    ({'name': 'v'}, 'path'),
    ({'name': 'v', 'path': 'runs'}, 'path'),
    ({'name': 'v', 'path': '//evil.example/runs'}, 'path'),
    ({'name': 'v', 'path': 'https://evil.example/'}, 'path'),
    ({'name': 'v', 'path': 'javascript:alert(1)'}, 'path'),
    ({'name': 'v', 'path': '/\\evil.example'}, 'path'),
    ({'name': 'v', 'path': '/api/runs'}, 'path'),
    ({'name': 'v', 'path': '/static/js/app.js'}, 'path'),
    ({'name': 'v', 'path': '/metrics/../api/status'}, 'path'),
    ({'name': 'v', 'path': '/runs/a/b'}, 'path'),
    ({'name': 'v', 'path': '/nosuchpage'}, 'path'),
    ({'name': 'v', 'path': '/runs', 'owner': 'me'}, 'owner'),
])
def test_views_validation(validating, body, field):
    answer = validating.post('/api/views', json=body, headers=H)
    assert answer.status_code == 400, answer.text
    error = answer.json()['error']
    assert error['type'] == 'InvalidView' and error['detail']['field'] == field
    assert error['message']
    assert validating.get('/api/views').json()['views'] == []


@pytest.fixture(scope='module')
def validating(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('views'))
    Repo(path, init=True).close()
    with _client(path) as client:
        yield client


def test_views_writes_need_the_token_and_a_writable_server(repo_dir):
    with _client(repo_dir) as client:
        assert client.post('/api/views', json={'name': 'v', 'path': '/runs'}).status_code == 403
        assert client.post('/api/views', json=['not', 'an', 'object'], headers=H) \
            .status_code == 400
        view = client.post('/api/views', json={'name': 'v', 'path': '/'}, headers=H).json()
    with _client(repo_dir, read_only=True) as client:
        assert client.get('/api/views').json()['read_only'] is True
        for answer in (client.post('/api/views', json={'name': 'w', 'path': '/runs'}, headers=H),
                       client.patch(f'/api/views/{view["id"]}', json={'name': 'w'}, headers=H),
                       client.delete(f'/api/views/{view["id"]}', headers=H)):
            assert answer.status_code == 403
            assert answer.json()['error']['type'] == 'ReadOnlyError'
        assert [v['name'] for v in client.get('/api/views').json()['views']] == ['v']


def build_small(location) -> list[str]:
    """Four runs: two in "a" (one archived, lr differs), two in "b", one of them still
    being written (left open, in ``_open``) and one with a param only it has."""
    repo = Repo(location)
    hashes = []
    for i, (experiment, lr) in enumerate([('a', 0.1), ('a', 0.01), ('b', 0.1), ('b', 0.1)]):
        run = quiet_run(repo, experiment=experiment)
        run['hparams'] = {'lr': lr, 'batch': 32}
        if i == 3:
            run['only_here'] = 'x'
        run.track(float(i), name='loss', step=0)
        run.track(float(i) / 2, name='acc', step=0, context={'subset': 'val'})
        if i == 1:
            run.archived = True
        if i == 2:
            _open.append(run)
        else:
            run.close()
        hashes.append(run.hash)
    return hashes


_open: list = []


def check_summary_and_compare(location) -> None:
    hashes = build_small(location)
    try:
        with _client(location) as client:
            experiments = {e['name']: e for e in
                           client.get('/api/experiments/summary').json()['experiments']}
            assert set(experiments) == {'a', 'b'}
            a, b = experiments['a'], experiments['b']
            assert (a['runs'], a['archived'], a['active']) == (1, 1, 0)
            assert (b['runs'], b['archived'], b['active']) == (2, 0, 1)
            # archived runs are left out of the varied params; in b lr and batch are alike
            assert a['varied_params'] == [] and b['varied_params'] == []
            assert b['last_activity'] >= b['first_created']

            answer = client.get(f'/api/compare?runs={hashes[3]},{hashes[0]},nope,{hashes[0]}')
            body = answer.json()
            assert [r['hash'] for r in body['runs']] == [hashes[3], hashes[0]]
            assert body['missing'] == ['nope']
            first = body['runs'][0]
            assert first['params'] == {'hparams.lr': 0.1, 'hparams.batch': 32,
                                       'only_here': 'x'}
            assert {(m['name'], str(m['context']), m['last']) for m in first['metrics']} == \
                {('loss', '{}', 3.0), ('acc', "{'subset': 'val'}", 1.5)}
            assert first['experiment'] == 'b' and first['duration'] >= 0
            assert client.get('/api/compare?runs=').status_code == 400
            many = ','.join(f'h{i}' for i in range(51))
            assert client.get(f'/api/compare?runs={many}').json()['error']['type'] == \
                'TooManyRuns'
    finally:
        while _open:
            _open.pop().close()


def test_experiments_summary_and_compare(repo_dir):
    check_summary_and_compare(repo_dir)


def test_varied_params_order():
    import json

    from aim.web.explore_api import varied_params
    rows = []
    for i, (lr, opt) in enumerate([(0.1, 'a'), (0.2, 'b'), (0.3, 'b'), (0.4, 'a')]):
        params = {'lr': lr, 'opt': opt, 'seed': 1}
        if i == 0:
            params['rare'] = i
        rows.append(('e', json.dumps(params)))
    rows.append(('f', '{"lr": 1}'))
    varied = varied_params(rows)
    assert [p['path'] for p in varied['e']] == ['lr', 'opt']   # seed alike, rare on 1 of 4
    assert varied['e'][0]['min'] == 0.1 and varied['e'][0]['max'] == 0.4
    assert varied['e'][1]['values'] == ['a', 'b']
    assert varied['f'] == []
