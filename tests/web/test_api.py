"""The JSON API, in process, on a repository written through the SDK."""
from __future__ import annotations

import csv
import importlib.util
import io
import itertools
import json

import numpy as np
import pytest

from aim.web.series_payload import decode_binary as decode_frame
from tests.web.repo_factory import XSS_NAME, build_repo

HAS_QUERY_LAYER = importlib.util.find_spec('aim.sdk.collections') is not None


@pytest.fixture(scope='module', params=['sqlite', 'postgresql'])
def built_repo(request, tmp_path_factory):
    """The API's repository in each backend: (path or URL, run hashes)."""
    if request.param == 'postgresql':
        from tests.pg.cluster import create_database_from_template
        url = create_database_from_template(request.getfixturevalue('pg_cluster'), 'aim_webapi')
        return url, build_repo(url)
    path = str(tmp_path_factory.mktemp('webrepo'))
    return path, build_repo(path)



def test_runs_page_projects_params_and_last_metric_values(client, built_repo):
    body = client.get('/api/runs', params={'params': 'hparams.lr,seed', 'metrics': 'loss',
                                           'limit': 4}).json()
    assert body['total'] == 6 and len(body['runs']) == 4
    first = body['runs'][0]
    assert set(first['params']) == {'hparams.lr', 'seed'}
    assert first['metrics'][0]['name'] == 'loss' and first['metrics'][0]['last_step'] == 299
    page2 = client.get('/api/runs', params={'offset': 4, 'limit': 4}).json()
    assert len(page2['runs']) == 2
    seen = {r['hash'] for r in body['runs']} | {r['hash'] for r in page2['runs']}
    assert seen == set(built_repo[1])


def test_runs_sort_by_param_and_by_metric(client):
    by_lr = client.get('/api/runs', params={'sort': 'params.hparams.lr', 'params': 'hparams.lr'})
    lrs = [r['params']['hparams.lr'] for r in by_lr.json()['runs']]
    assert lrs == sorted(lrs)
    by_loss = client.get('/api/runs', params={'sort': '-metric:loss', 'metrics': 'loss'})
    lasts = [r['metrics'][0]['last'] for r in by_loss.json()['runs']]
    assert lasts == sorted(lasts, reverse=True)


def test_bad_parameters_share_one_error_shape(client):
    bad_sort = client.get('/api/runs', params={'sort': 'nonsense'})
    assert bad_sort.status_code == 400
    assert bad_sort.json()['error']['type'] == 'InvalidSort'
    bad_limit = client.get('/api/runs', params={'limit': 0})
    assert bad_limit.status_code == 422
    err = bad_limit.json()['error']
    assert err['type'] == 'InvalidRequest' and 'limit' in err['message']
    missing = client.get('/api/runs/deadbeef')
    assert missing.status_code == 404
    assert missing.json()['error']['detail']['run_hash'] == 'deadbeef'
    nowhere = client.get('/api/nothing-here')
    assert nowhere.status_code == 404 and 'error' in nowhere.json()
    bad_axis = client.get('/api/series', params={'x_axis': 'color'})
    assert bad_axis.status_code == 400 and 'step' in bad_axis.json()['error']['message']


@pytest.mark.skipif(not HAS_QUERY_LAYER, reason='query layer (aim.sdk.collections) not present')
def test_query_errors_carry_their_position(client):
    r = client.get('/api/runs', params={'q': 'run.hparams.lr < 0.01 and and'})
    assert r.status_code == 400
    err = r.json()['error']
    assert err['detail']['position'] is not None
    r = client.get('/api/series', params={'q': 'metric.name == "loss" &&'})
    assert r.status_code == 400 and r.json()['error']['detail']['position'] is not None


@pytest.mark.skipif(not HAS_QUERY_LAYER, reason='query layer (aim.sdk.collections) not present')
def test_queries_select_runs_and_series(client):
    runs = client.get('/api/runs', params={'q': 'run.hparams.optimizer == "adam"'}).json()
    assert runs['total'] == 3
    series = client.get('/api/series', params={'q': 'metric.name == "loss"'}).json()
    assert series['total'] == 6 and {s['name'] for s in series['series']} == {'loss'}


def test_run_details_and_logs(client, built_repo):
    h = built_repo[1][0]
    info = client.get(f'/api/runs/{h}').json()
    assert info['props']['name'] == XSS_NAME
    assert info['params']['hparams']['optimizer'] == 'adam'
    names = {(t['name'], json.dumps(t['context'])) for t in info['traces']}
    assert ('loss', '{}') in names and ('acc', '{"subset": "val"}') in names
    logs = client.get(f'/api/runs/{h}/logs').json()
    assert logs['lines'] == [] and logs['next_line'] == 0


def test_series_downsampling_keeps_the_spike(client, built_repo):
    h = built_repo[1][0]
    body = client.get('/api/series', params={'runs': h, 'names': 'loss', 'width': 10}).json()
    (s,) = body['series']
    assert s['n'] <= 40  # of 300 points
    assert max(s['y']) == 100.0
    assert s['step'][s['y'].index(100.0)] == 150
    assert body['runs'][h]['name'] == XSS_NAME


def test_zoomed_range_comes_back_at_full_resolution(client, built_repo):
    h = built_repo[1][0]
    body = client.get('/api/series', params={'runs': h, 'names': 'loss', 'width': 100,
                                             'x_min': 140, 'x_max': 160}).json()
    (s,) = body['series']
    assert s['x'] == list(range(139, 162))  # every point, plus one neighbour each side


def test_x_axes(client, built_repo):
    h = built_repo[1][1]
    params = {'runs': h, 'names': 'loss', 'full': True}
    epoch = client.get('/api/series', params={**params, 'x_axis': 'epoch'}).json()['series'][0]
    assert epoch['x'][0] == 0 and epoch['x'][-1] == 2 and epoch['n'] == 300
    rel = client.get('/api/series', params={**params, 'x_axis': 'relative_time'}).json()
    xs = rel['series'][0]['x']
    assert xs[0] == 0 and all(b >= a for a, b in itertools.pairwise(xs))
    wall = client.get('/api/series', params={**params, 'x_axis': 'wall_time'}).json()
    assert wall['series'][0]['x'][0] > 1.6e9


def test_binary_frame_matches_json(client):
    as_json = client.get('/api/series', params={'width': 20}).json()
    frame = client.get('/api/series', params={'width': 20, 'format': 'binary'})
    assert frame.headers['content-type'] == 'application/x-aim-series'
    head = decode_frame(frame.content)
    assert len(head['series']) == len(as_json['series']) == 18
    for a, b in zip(head['series'], as_json['series']):
        assert (a['run'], a['name'], a['context']) == (b['run'], b['name'], b['context'])
        assert a['x'].tolist() == b['x'] and a['y'].tolist() == b['y']


def test_float32_frame_is_half_the_size_and_close(client, built_repo):
    params = {'runs': built_repo[1][0], 'names': 'loss', 'width': 20, 'format': 'binary'}
    exact = decode_frame(client.get('/api/series', params=params).content)
    small = client.get('/api/series', params={**params, 'precision': 'f32'}).content
    compact = decode_frame(small)
    assert compact['dtype'] == 'f4'
    a, b = exact['series'][0], compact['series'][0]
    assert a['x'].tolist() == b['x'].tolist()  # steps are exact as offsets in float32
    assert np.allclose(a['y'], b['y'], rtol=1e-6) and b['y'].max() == 100.0
    assert client.get('/api/series', params={**params, 'precision': 'f16'}).status_code == 400


@pytest.mark.backends
def test_since_returns_only_newer_points(repo):
    """A live poll passes the last answer's ``until`` and gets exactly the later points."""
    import time

    from fastapi.testclient import TestClient

    from aim import Repo
    from aim.web.app import create_app
    from tests.web.repo_factory import quiet_run
    run = quiet_run(repo)
    for step in range(10):
        run.track(float(step), name='loss', step=step)
    run.flush()
    with TestClient(create_app(Repo(repo.root_path))) as client:
        params = {'runs': run.hash, 'full': True}
        first = client.get('/api/series', params=params).json()
        assert first['series'][0]['n'] == 10
        time.sleep(0.01)  # timestamps are kept to the millisecond
        for step in range(10, 15):
            run.track(float(step), name='loss', step=step)
        run.close()
        newer = client.get('/api/series', params={**params, 'since': first['until']}).json()
        (s,) = newer['series']
        assert s['x'] == [10.0, 11.0, 12.0, 13.0, 14.0]
        again = client.get('/api/series', params={**params, 'since': newer['until']}).json()
        assert again['series'] == []


def test_export_is_full_resolution(client, built_repo):
    h = built_repo[1][0]
    text = client.get('/api/series/export', params={'runs': h, 'format': 'csv'}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 300 + 300 + 30
    spike = [r for r in rows if r['metric'] == 'loss' and r['step'] == '150']
    assert float(spike[0]['value']) == 100.0 and spike[0]['run_name'] == XSS_NAME
    lines = client.get('/api/series/export', params={'runs': h, 'format': 'jsonl'}).text
    records = [json.loads(line) for line in lines.splitlines()]
    assert sum(len(r['values']) for r in records) == 630


def test_repository_facts(client):
    params = client.get('/api/params').json()
    assert params['hparams.lr']['min'] == 0.001 and params['hparams.lr']['max'] == 0.1
    assert params['hparams.optimizer']['values'] == ['adam', 'sgd']
    assert {e['name']: e['runs'] for e in client.get('/api/experiments').json()} == \
        {'baseline': 3, 'wide': 3}
    assert {t['name'] for t in client.get('/api/tags').json()} == {'even', 'odd'}
    names = client.get('/api/metric-names').json()
    assert {(m['name'], json.dumps(m['context'])) for m in names} == {
        ('loss', '{}'), ('acc', '{"subset": "train"}'), ('acc', '{"subset": "val"}')}


def test_openapi_documents_the_api(client):
    paths = client.get('/openapi.json').json()['paths']
    for path in ('/api/runs', '/api/series', '/api/series/export', '/api/params',
                 '/api/runs/{run_hash}'):
        assert path in paths


def test_static_files_refuse_path_escapes(client):
    assert client.get('/static/js/app.js').status_code == 200
    for escape in ('/static/..%2Fapp.py', '/static/%2e%2e/%2e%2e/errors.py',
                   '/static/..%5Capp.py', '/static/%2Fetc%2Fpasswd'):
        r = client.get(escape)
        assert r.status_code == 404, escape
        assert r.json()['error']['type'] in ('NotFound', 'HTTPError')


def test_pages_are_served(client, built_repo):
    for path in ('/', '/runs', '/metrics', '/params', '/live', f'/runs/{built_repo[1][0]}'):
        r = client.get(path)
        assert r.status_code == 200 and '<main id="page">' in r.text


def test_repeated_view_is_served_whole_and_a_grown_series_is_read_again(tmp_path):
    """An identical binary request is answered from the encoded answer it left behind
    (nothing reduced: Server-Timing shows it), byte for byte; once a series gains points
    the same request reads it again."""
    from fastapi.testclient import TestClient

    from aim import Repo, Run
    from aim.web.app import create_app
    from tests.web.repo_factory import quiet_run
    repo = Repo(str(tmp_path), init=True)
    run = quiet_run(repo)
    for step in range(20_000):
        run.track(float(step % 97), name='loss', step=step)
    run.close()
    params = {'runs': run.hash, 'width': 500, 'format': 'binary', 'precision': 'f32'}
    with TestClient(create_app(Repo(str(tmp_path)))) as client:
        first = client.get('/api/series', params=params)
        again = client.get('/api/series', params=params)
        assert again.content == first.content
        assert 'fetch;dur=' in again.headers['server-timing']
        before = decode_frame(first.content)['series'][0]
        resumed = Run(run.hash, repo=str(tmp_path), system_tracking_interval=None,
                      capture_terminal_logs=False)
        resumed.track(500.0, name='loss', step=20_000)
        resumed.close()
        grown = decode_frame(client.get('/api/series', params=params).content)['series'][0]
    assert grown['count'] == before['count'] + 1 == 20_001
    assert grown['y'].max() == 500.0 and before['y'].max() == 96.0


def test_the_frame_reader_refuses_what_is_not_a_whole_frame(client):
    frame = client.get('/api/series', params={'width': 20, 'format': 'binary'}).content
    with pytest.raises(ValueError, match='not a series frame'):
        decode_frame(b'JUNK' + frame[4:])
    with pytest.raises(ValueError, match='holds'):
        decode_frame(frame + b'\0' * 8)


def test_sort_by_param_skips_a_run_whose_params_are_not_json(tmp_path):
    """One run's malformed params JSON in the index must not break sorting the table."""
    import sqlite3

    from fastapi.testclient import TestClient

    from aim import Repo
    from aim.web.app import create_app
    hashes = build_repo(str(tmp_path), n_runs=3, steps=5)
    conn = sqlite3.connect(str(tmp_path / '.aim' / 'repo.db'))
    with conn:
        conn.execute('UPDATE runs SET params=? WHERE hash=?', ('{"hparams": {"lr": 0.1', hashes[0]))
    conn.close()
    with TestClient(create_app(Repo(str(tmp_path)))) as client:
        answer = client.get('/api/runs', params={'sort': 'params.hparams.lr',
                                                  'params': 'hparams.lr'})
        assert answer.status_code == 200, answer.text
        runs = answer.json()['runs']
        assert {r['hash'] for r in runs} == set(hashes)  # the damaged run is still listed
        lrs = [r['params'].get('hparams.lr') for r in runs if r['hash'] != hashes[0]]
        assert lrs == sorted(lrs)
        # the run page, the params summary and the series answer of that run still answer
        assert client.get(f'/api/runs/{hashes[0]}').status_code == 200
        assert client.get('/api/params').status_code == 200
        series = client.get('/api/series', params={'runs': hashes[0], 'names': 'loss'})
        assert series.status_code == 200, series.text


def test_out_of_range_numbers_are_request_errors_not_server_errors(client):
    huge = client.get('/api/runs', params={'offset': 2 ** 63})
    assert huge.status_code == 422 and 'offset' in huge.json()['error']['message']
    for name in ('x_min', 'x_max', 'since'):
        for value in ('nan', 'inf', '-inf'):
            answer = client.get('/api/series', params={'names': 'loss', name: value})
            assert answer.status_code == 422, (name, value, answer.text)
            assert name in answer.json()['error']['message']
