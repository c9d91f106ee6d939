"""Autologging, log_batch, long metric histories and resuming runs across both APIs."""
from __future__ import annotations

import time

import pytest


def test_sklearn_autolog_on_a_tiny_model(aimkit_mlflow):
    pytest.importorskip('sklearn')
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from aim import Repo

    mlflow.set_experiment('autolog')
    mlflow.sklearn.autolog()
    try:
        rng = np.random.RandomState(0)
        X = rng.rand(60, 3)
        y = (X[:, 0] + 0.1 * rng.rand(60) > 0.5).astype(int)
        with mlflow.start_run() as run:
            model = LogisticRegression(C=0.5, max_iter=100).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = mlflow.MlflowClient().get_run(run.info.run_id)
    assert got.data.params['C'] == '0.5' and got.data.params['max_iter'] == '100'
    assert got.data.metrics['training_accuracy_score'] == pytest.approx(model.score(X, y))
    assert {'training_f1_score', 'training_log_loss', 'training_roc_auc'} <= \
        set(got.data.metrics)
    assert got.data.tags['estimator_name'] == 'LogisticRegression'
    assert got.inputs.dataset_inputs, 'the training data is logged as a dataset input'
    # the model was logged (MLflow 3: a logged model) and loads back through the server
    [output] = got.outputs.model_outputs
    loaded = mlflow.sklearn.load_model(f'models:/{output.model_id}')
    assert (loaded.predict(X) == model.predict(X)).all()
    aim_run = Repo(aimkit_mlflow.repo).get_run(run.info.run_id)
    assert aim_run.experiment == 'autolog'
    assert aim_run['hparams']['C'] == 0.5 and aim_run['hparams']['max_iter'] == 100
    assert aim_run['params']['solver'] == 'lbfgs'
    assert aim_run.get_metric('training_accuracy_score').values_numpy().tolist() == \
        [pytest.approx(model.score(X, y))]
    assert 'estimator_name=LogisticRegression' in aim_run.tags


def test_log_batch_of_1000_metrics(aimkit_mlflow):
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from aim import Repo
    client = MlflowClient()
    exp = client.create_experiment('batch-exp')
    run = client.create_run(exp)
    now = int(time.time() * 1000)
    metrics = [Metric(f'm{k}', k * 1000.0 + step, now + step, step)
               for k in range(10) for step in range(100)]
    client.log_batch(run.info.run_id, metrics=metrics,
                     params=[Param('batch', '1000')], tags=[RunTag('kind', 'batch')])
    client.set_terminated(run.info.run_id)
    got = client.get_run(run.info.run_id)
    assert got.data.metrics == {f'm{k}': k * 1000.0 + 99 for k in range(10)}
    assert got.data.params == {'batch': '1000'} and got.data.tags['kind'] == 'batch'
    for k in (0, 9):
        history = client.get_metric_history(run.info.run_id, f'm{k}')
        assert [(m.step, m.value, m.timestamp) for m in history] == \
            [(s, k * 1000.0 + s, now + s) for s in range(100)]
    assert client.get_metric_history(run.info.run_id, 'absent') == []
    aim_run = Repo(aimkit_mlflow.repo).get_run(run.info.run_id)
    assert len(aim_run.metrics()) == 10
    assert all(m.count == 100 for m in aim_run.metrics())
    # one more than MLflow allows in a request is refused, naming the limit (the client
    # splits its batches; a plain HTTP request does not)
    import requests
    answer = requests.post(f'{aimkit_mlflow.url}/api/2.0/mlflow/runs/log-batch', json={
        'run_id': run.info.run_id, 'metrics': [
            {'key': 'x', 'value': 1.0, 'timestamp': now, 'step': s} for s in range(1001)]})
    assert answer.status_code == 400
    assert answer.json()['error_code'] == 'INVALID_PARAMETER_VALUE'
    assert 'at most 1000 metrics' in answer.json()['message']


def test_metric_history_of_100000_points(aimkit_mlflow):
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from aim import Repo
    client = MlflowClient()
    exp = client.create_experiment('long-history')
    run = client.create_run(exp)
    t0 = 1_700_000_000_000
    n = 100_000
    for start in range(0, n, 1000):
        client.log_batch(run.info.run_id, metrics=[
            Metric('loss', 1.0 / (s + 1), t0 + s, s) for s in range(start, start + 1000)])
    history = client.get_metric_history(run.info.run_id, 'loss')   # pages of 25,000
    assert len(history) == n
    assert [m.step for m in history] == list(range(n))
    assert all(m.value == 1.0 / (m.step + 1) and m.timestamp == t0 + m.step
               for m in history)
    # pages of the REST API itself
    import requests
    url = f'{aimkit_mlflow.url}/api/2.0/mlflow/metrics/get-history'
    page = requests.get(url, params={'run_id': run.info.run_id, 'metric_key': 'loss',
                                     'max_results': 40_000}).json()
    assert len(page['metrics']) == 40_000 and page['next_page_token']
    rest = requests.get(url, params={'run_id': run.info.run_id, 'metric_key': 'loss',
                                     'max_results': 70_000,
                                     'page_token': page['next_page_token']}).json()
    assert rest['metrics'][0]['step'] == 40_000 and len(rest['metrics']) == 60_000
    assert 'next_page_token' not in rest
    metric = Repo(aimkit_mlflow.repo).get_run(run.info.run_id).get_metric('loss')
    assert metric.count == n and metric.last_step == n - 1


def test_run_started_in_mlflow_resumed_and_read_with_the_aim_sdk(aimkit_mlflow):
    import mlflow

    from aim import Repo, Run
    mlflow.set_experiment('resume-exp')
    with mlflow.start_run(run_name='resumable') as run:
        mlflow.log_param('lr', '0.1')
        for step in range(5):
            mlflow.log_metric('loss', 10.0 - step, step=step)
    run_id = run.info.run_id
    assert mlflow.get_run(run_id).info.status == 'FINISHED'

    # resumed by MLflow: running again, then more points
    with mlflow.start_run(run_id=run_id):
        assert mlflow.get_run(run_id).info.status == 'RUNNING'
        for step in range(5, 8):
            mlflow.log_metric('loss', 10.0 - step, step=step)
        mlflow.log_param('epochs', 8)
        with pytest.raises(Exception, match='Changing param values is not allowed'):
            mlflow.log_param('lr', '0.2')
    assert mlflow.get_run(run_id).info.status == 'FINISHED'

    # read with the SDK from the directory and through the server
    for repo in (Repo(aimkit_mlflow.repo), Repo(aimkit_mlflow.server.url)):
        aim_run = repo.get_run(run_id)
        assert aim_run.name == 'resumable' and aim_run.experiment == 'resume-exp'
        assert aim_run['params'] == {'lr': '0.1', 'epochs': '8'}
        assert aim_run['hparams'] == {'lr': 0.1, 'epochs': 8}
        loss = aim_run.get_metric('loss')
        assert loss.steps.tolist() == list(range(8))
        assert loss.values_numpy().tolist() == [10.0 - s for s in range(8)]

    # resumed by the SDK through the server: MLflow sees the new points and params
    sdk = Run(run_id, repo=aimkit_mlflow.server.url, system_tracking_interval=None,
              capture_terminal_logs=False)
    sdk.track(1.0, name='loss')            # step=None continues after step 7
    sdk['extra'] = 'from-sdk'
    sdk.close()
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run_id, 'loss')
    assert [(m.step, m.value) for m in history][-2:] == [(7, 3.0), (8, 1.0)]
    assert client.get_run(run_id).data.metrics['loss'] == 1.0
    assert client.get_run(run_id).data.params == {'lr': '0.1', 'epochs': '8'}


def test_run_lifecycle_delete_restore_and_status(aimkit_mlflow):
    from mlflow import MlflowClient

    from aim import Repo
    client = MlflowClient()
    exp = client.create_experiment('lifecycle')
    run = client.create_run(exp, run_name='doomed')
    rid = run.info.run_id
    assert Repo(aimkit_mlflow.repo).get_run(rid).active
    client.set_terminated(rid, status='FAILED')
    assert client.get_run(rid).info.status == 'FAILED'
    client.delete_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == 'deleted'
    assert Repo(aimkit_mlflow.repo).get_run(rid).archived
    assert client.search_runs([exp]) == []
    assert [r.info.run_id for r in client.search_runs([exp], run_view_type=2)] == [rid]
    with pytest.raises(Exception, match="INVALID_STATE.*must be in the 'active' state"):
        client.log_metric(rid, 'x', 1.0)
    client.restore_run(rid)
    assert [r.info.run_id for r in client.search_runs([exp])] == [rid]
    client.update_run(rid, name='renamed')
    assert Repo(aimkit_mlflow.repo).get_run(rid).name == 'renamed'
