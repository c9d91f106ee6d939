"""Experiments (create, get, search, rename, delete, restore, tags), MLflow's error
answers for bad input, the model registry answered "not supported", artifacts kept inside
their folder, and tokens."""
from __future__ import annotations

import pytest
import requests


def test_experiment_lifecycle(aimkit_mlflow):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from aim import Repo
    client = MlflowClient()
    eid = client.create_experiment('exp-life', tags={'team': 'a'})
    exp = client.get_experiment(eid)
    assert exp.name == 'exp-life' and exp.tags == {'team': 'a'}
    assert exp.artifact_location == f'mlflow-artifacts:/{eid}'
    assert client.get_experiment_by_name('exp-life').experiment_id == eid
    with pytest.raises(MlflowException) as info:
        client.create_experiment('exp-life')
    assert info.value.error_code == 'RESOURCE_ALREADY_EXISTS'

    run = client.create_run(eid, run_name='in-life')
    client.set_terminated(run.info.run_id)
    client.rename_experiment(eid, 'exp-renamed')
    assert client.get_experiment(eid).name == 'exp-renamed'
    assert client.get_experiment_by_name('exp-life') is None
    assert Repo(aimkit_mlflow.repo).get_run(run.info.run_id).experiment == 'exp-renamed'

    client.set_experiment_tag(eid, 'stage', 'dev')
    assert client.get_experiment(eid).tags == {'team': 'a', 'stage': 'dev'}
    names = [e.name for e in client.search_experiments(filter_string="name LIKE 'exp-%'")]
    assert names == ['exp-renamed']
    assert [e.name for e in client.search_experiments(
        filter_string="tags.stage = 'dev'")] == ['exp-renamed']

    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == 'deleted'
    assert Repo(aimkit_mlflow.repo).get_run(run.info.run_id).archived
    assert eid not in [e.experiment_id for e in client.search_experiments()]
    assert eid in [e.experiment_id for e in client.search_experiments(view_type=2)]
    with pytest.raises(MlflowException) as info:
        client.create_run(eid)
    assert info.value.error_code == 'INVALID_STATE'
    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == 'active'
    assert not Repo(aimkit_mlflow.repo).get_run(run.info.run_id).archived
    with pytest.raises(MlflowException) as info:
        client.delete_experiment('0')
    assert info.value.error_code == 'INVALID_PARAMETER_VALUE'


def _post(target, path, body):
    return requests.post(f'{target.url}/api/2.0/mlflow/{path}', json=body, timeout=30)


def _get(target, path, **params):
    return requests.get(f'{target.url}/api/2.0/mlflow/{path}', params=params, timeout=30)


@pytest.mark.parametrize('call,code,words', [
    (lambda t: _get(t, 'runs/get', run_id='nope'), 'RESOURCE_DOES_NOT_EXIST', "Run 'nope'"),
    (lambda t: _get(t, 'runs/get'), 'INVALID_PARAMETER_VALUE', "'run_id'"),
    (lambda t: _get(t, 'experiments/get', experiment_id='999999'),
     'RESOURCE_DOES_NOT_EXIST', '999999'),
    (lambda t: _get(t, 'experiments/get-by-name', experiment_name='no-such'),
     'RESOURCE_DOES_NOT_EXIST', 'no-such'),
    (lambda t: _post(t, 'experiments/create', {}), 'INVALID_PARAMETER_VALUE', 'name'),
    (lambda t: _post(t, 'runs/log-metric', {'run_id': 'nope', 'key': 'x', 'value': 1,
                                            'timestamp': 1}),
     'RESOURCE_DOES_NOT_EXIST', 'nope'),
    (lambda t: _post(t, 'runs/search', {'experiment_ids': ['0'], 'max_results': 50001}),
     'INVALID_PARAMETER_VALUE', 'max_results'),
    (lambda t: _post(t, 'runs/search', {'experiment_ids': ['0'], 'page_token': 'zz'}),
     'INVALID_PARAMETER_VALUE', 'page token'),
    (lambda t: _post(t, 'runs/search', {'experiment_ids': ['0'], 'order_by': ['x.y DESC']}),
     'INVALID_PARAMETER_VALUE', 'order_by'),
    (lambda t: _post(t, 'registered-models/create', {'name': 'm'}), 'NOT_IMPLEMENTED',
     'model registry'),
    (lambda t: _get(t, 'model-versions/get', name='m', version='1'), 'NOT_IMPLEMENTED',
     'not supported'),
    (lambda t: _post(t, 'no-such-thing', {}), 'ENDPOINT_NOT_FOUND', 'no-such-thing'),
    (lambda t: _get(t, 'metrics/get-history', run_id='nope', metric_key='x'),
     'RESOURCE_DOES_NOT_EXIST', 'nope'),
    (lambda t: _get(t, 'metrics/get-history', run_id='nope'), 'INVALID_PARAMETER_VALUE',
     "'metric_key'"),
    (lambda t: _post(t, 'runs/update', {'run_id': 'nope', 'status': 'FINISHED'}),
     'RESOURCE_DOES_NOT_EXIST', 'nope'),
    (lambda t: _post(t, 'experiments/search', {'filter': "colour = 'red'"}),
     'INVALID_PARAMETER_VALUE', 'colour'),
])
def test_errors_answer_mlflows_error_json(aimkit_mlflow, call, code, words):
    answer = call(aimkit_mlflow)
    assert answer.status_code >= 400
    body = answer.json()
    assert body['error_code'] == code
    assert words in body['message']


def test_bad_metric_and_param_values(aimkit_mlflow):
    from mlflow import MlflowClient
    client = MlflowClient()
    run = client.create_run('0')
    rid = run.info.run_id
    bad = [
        ({'run_id': rid, 'key': 'x', 'value': 'abc', 'timestamp': 1}, 'must be a number'),
        ({'run_id': rid, 'key': 'x', 'value': 1.0}, "'timestamp'"),
        ({'run_id': rid, 'key': 'x', 'value': 1.0, 'timestamp': 1, 'step': 1.5},
         'must be an integer'),
        ({'run_id': rid, 'key': '', 'value': 1.0, 'timestamp': 1}, "'key'"),
        ({'run_id': rid, 'key': '../x', 'value': 1.0, 'timestamp': 1}, 'Invalid metric key'),
    ]
    for body, words in bad:
        answer = _post(aimkit_mlflow, 'runs/log-metric', body)
        assert answer.status_code == 400, body
        assert answer.json()['error_code'] == 'INVALID_PARAMETER_VALUE'
        assert words in answer.json()['message'], body
    answer = _post(aimkit_mlflow, 'runs/log-parameter',
                   {'run_id': rid, 'key': 'p', 'value': 'x' * 6001})
    assert answer.json()['error_code'] == 'INVALID_PARAMETER_VALUE'
    assert '6000' in answer.json()['message']
    answer = requests.post(f'{aimkit_mlflow.url}/api/2.0/mlflow/runs/log-batch',
                           data=b'{not json', timeout=30)
    assert answer.status_code == 400 and answer.json()['error_code'] == 'MALFORMED_REQUEST'
    answer = requests.post(f'{aimkit_mlflow.url}/api/2.0/mlflow/experiments/create',
                           data=b'{"name": "half \\ud800 a pair"}', timeout=30)
    assert answer.status_code == 400
    assert answer.json()['error_code'] == 'INVALID_PARAMETER_VALUE'
    assert "'name'" in answer.json()['message']
    # nothing of a refused batch is applied
    answer = _post(aimkit_mlflow, 'runs/log-batch', {'run_id': rid, 'metrics': [
        {'key': 'ok', 'value': 1.0, 'timestamp': 1, 'step': 0},
        {'key': 'bad', 'value': 'x', 'timestamp': 1, 'step': 0}]})
    assert answer.status_code == 400
    assert client.get_run(rid).data.metrics == {}
    client.set_terminated(rid)


def test_server_names_its_mlflow_tracking_uri(aimkit_mlflow):
    assert f'mlflow.set_tracking_uri("{aimkit_mlflow.url}")' in aimkit_mlflow.server.output()


def test_ajax_api_paths_answer_too(aimkit_mlflow):
    answer = requests.get(f'{aimkit_mlflow.url}/ajax-api/2.0/mlflow/experiments/get',
                          params={'experiment_id': '0'}, timeout=30)
    assert answer.json()['experiment']['name'] == 'Default'
    answer = requests.post(f'{aimkit_mlflow.url}/ajax-api/2.0/mlflow/experiments/search',
                           json={'max_results': 10}, timeout=30)
    assert 'Default' in [e['name'] for e in answer.json()['experiments']]


def test_artifacts_stay_inside_their_folder(aimkit_mlflow, tmp_path):
    import os
    base = f'{aimkit_mlflow.url}/api/2.0/mlflow-artifacts/artifacts'
    for path in ('../escape.txt', '0/../../escape.txt', '%2e%2e/escape.txt'):
        answer = requests.put(f'{base}/{path}', data=b'x', timeout=30)
        assert answer.status_code in (400, 404), path
    assert not os.path.exists(os.path.join(os.path.dirname(aimkit_mlflow.artifacts),
                                           'escape.txt'))
    answer = requests.put(f'{base}/0/r1/artifacts/sub/file.bin', data=b'\x00\x01', timeout=30)
    assert answer.status_code == 200
    with open(os.path.join(aimkit_mlflow.artifacts, '0', 'r1', 'artifacts', 'sub',
                           'file.bin'), 'rb') as f:
        assert f.read() == b'\x00\x01'
    listing = requests.get(base, params={'path': '0/r1/artifacts'}, timeout=30).json()
    assert listing == {'files': [{'path': 'sub', 'is_dir': True}]}
    assert requests.get(f'{base}/0/r1/artifacts/sub/file.bin', timeout=30).content == \
        b'\x00\x01'
    answer = requests.get(f'{base}/0/r1/artifacts/none.bin', timeout=30)
    assert answer.status_code == 404
    assert answer.json()['error_code'] == 'RESOURCE_DOES_NOT_EXIST'


def test_tokens_guard_the_mlflow_api(aim_server, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    secret = 's' * 32
    server = aim_server(tokens={'alice': secret}, extra_args=['--no-ui'])
    answer = requests.get(f'{server.http_url}/api/2.0/mlflow/experiments/get',
                          params={'experiment_id': '0'}, timeout=30)
    assert answer.status_code == 401
    monkeypatch.setenv('MLFLOW_TRACKING_TOKEN', secret)
    client = MlflowClient(tracking_uri=server.http_url)
    assert client.get_experiment('0').name == 'Default'
    monkeypatch.setenv('MLFLOW_TRACKING_TOKEN', 'wrong' * 8)
    with pytest.raises(MlflowException):
        MlflowClient(tracking_uri=server.http_url).get_experiment('0')
    # a page of a web site may not write through a browser
    answer = requests.post(f'{server.http_url}/api/2.0/mlflow/experiments/create',
                           json={'name': 'x'}, headers={'Origin': 'http://evil.example',
                                                        'Authorization': f'Bearer {secret}'},
                           timeout=30)
    assert answer.status_code == 403
