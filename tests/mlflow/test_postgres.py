"""The MLflow API over a repository on PostgreSQL: the same SQL, the same answers."""
from __future__ import annotations

import pytest


def test_mlflow_client_on_a_postgresql_repository(aim_server, pg_url, tmp_path):
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from aim import Repo
    artifacts = str(tmp_path / 'artifacts')
    server = aim_server(pg_url, extra_args=['--no-ui', '--artifacts-destination', artifacts])
    client = MlflowClient(tracking_uri=server.http_url)
    exp = client.create_experiment('on-pg')
    ids = []
    for i in range(6):
        run = client.create_run(exp, run_name=f'pg-{i}', start_time=1_750_000_000_000 + i)
        client.log_batch(run.info.run_id, metrics=[
            Metric('loss', 1.0 / (i + 1) + s, 1_750_000_000_000 + s, s) for s in range(50)])
        client.log_param(run.info.run_id, 'opt', 'adam' if i % 2 else 'sgd')
        client.set_tag(run.info.run_id, 'team', 'a')
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    names = [r.info.run_name for r in client.search_runs(
        [exp], filter_string="params.opt = 'adam'", order_by=['metrics.loss ASC'])]
    assert names == ['pg-5', 'pg-3', 'pg-1']
    assert [r.info.run_name for r in client.search_runs([exp], max_results=4)] == \
        ['pg-5', 'pg-4', 'pg-3', 'pg-2']
    history = client.get_metric_history(ids[0], 'loss')
    assert [(m.step, m.value) for m in history] == [(s, 1.0 + s) for s in range(50)]
    note = tmp_path / 'n.txt'
    note.write_text('pg')
    client.log_artifact(ids[0], str(note))
    assert [f.path for f in client.list_artifacts(ids[0])] == ['n.txt']
    run = Repo(pg_url).get_run(ids[3])
    assert run.name == 'pg-3' and run.experiment == 'on-pg'
    assert run['params'] == {'opt': 'adam'} and run.tags == ['team=a']
    assert run.get_metric('loss').count == 50
    with pytest.raises(Exception, match='RESOURCE_DOES_NOT_EXIST'):
        client.get_run('0' * 32)


def test_two_servers_on_one_database_agree_on_experiments(aim_server, pg_url, tmp_path):
    """Experiments live in the repository database: an experiment created through one
    server has the same id, tags and runs through another (a load balancer may send an
    MLflow client to either)."""
    from mlflow import MlflowClient
    # each server with a folder of its own, as on two machines
    a, b = (aim_server(pg_url, extra_args=['--no-ui', '--artifacts-destination',
                                           str(tmp_path / f'artifacts{i}')])
            for i in range(2))
    through_a, through_b = MlflowClient(a.http_url), MlflowClient(b.http_url)
    exp = through_a.create_experiment('shared', tags={'team': 'vision'})
    seen = through_b.get_experiment_by_name('shared')
    assert seen.experiment_id == exp and seen.tags == {'team': 'vision'}
    run = through_b.create_run(exp, run_name='via-b')
    through_b.log_metric(run.info.run_id, 'loss', 0.5, step=1)
    through_b.set_terminated(run.info.run_id)
    assert [r.info.run_name for r in through_a.search_runs([exp])] == ['via-b']
    other = through_b.create_experiment('second')
    assert other != exp and through_a.get_experiment(other).name == 'second'
