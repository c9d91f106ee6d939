"""Saved views (/api/views), the experiments summary (/api/experiments/summary) and the run
comparison (/api/compare), in process on SQLite repositories (tests/pg has the same on
PostgreSQL)."""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback

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


def _edit_in_child(location, requests, barrier) -> None:
    """One process of :func:`edit_in_processes`."""
    code = 1
    try:
        repo = Repo(location)
        read = repo.index.get_meta_json

        def slow_read(*args, **kwargs):
            value = read(*args, **kwargs)
            time.sleep(0.003)
            return value

        repo.index.get_meta_json = slow_read
        client = TestClient(create_app(repo, write_token=TOKEN))
        barrier.wait(timeout=60)
        for method, url, body in requests:
            answer = client.request(method, url, json=body, headers=H)
            if answer.status_code >= 300:
                print(f'{method} {url}: {answer.status_code} {answer.text}', file=sys.stderr)
                break
        else:
            code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def edit_in_processes(location, requests_of, n_procs: int = 2) -> None:
    """Each of ``n_procs`` processes (its own app, Repo and connection, as two `aim up`
    servers) sends the requests ``requests_of(i)`` gives, all starting together. Reads of
    meta values take a few milliseconds more in them (a busy server), which widens the
    window in which an edit made of a read and a separate write loses another process'
    edit. The processes come from a fork server that has imported the app (quick to
    start, and without the locks that this process' threads may hold)."""
    ctx = multiprocessing.get_context('forkserver')
    ctx.set_forkserver_preload([__name__])
    barrier = ctx.Barrier(n_procs)
    procs = [ctx.Process(target=_edit_in_child, args=(location, requests_of(i), barrier))
             for i in range(n_procs)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * n_procs
    finally:
        for p in procs:
            if p.exitcode is None:
                p.kill()


N_EDITS = 25


@pytest.mark.backends
def test_views_saved_by_two_processes_at_once_are_all_kept(repo_location):
    """Two servers saving views at the same instant: the read-modify-write of ``ui.views``
    is one database transaction, so no save overwrites another (a lock per process did)."""
    edit_in_processes(repo_location, lambda i: [
        ('POST', '/api/views', {'name': f'p{i} v{k}', 'path': f'/runs?k={k}'})
        for k in range(N_EDITS)])
    views = Repo(repo_location).index.get_meta_json('ui.views')
    assert sorted(v['name'] for v in views) == \
        sorted(f'p{i} v{k}' for i in range(2) for k in range(N_EDITS))
    assert len({v['id'] for v in views}) == 2 * N_EDITS


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
