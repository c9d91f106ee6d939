"""MLflow's quick start and the mapping to aimkit runs, read back through both APIs."""
from __future__ import annotations

import json
import math

import pytest


def test_quick_start_written_by_mlflow_is_a_normal_aimkit_run(aimkit_mlflow, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from aim import Repo

    exp_id = mlflow.set_experiment('quick-start').experiment_id
    note = tmp_path / 'notes.txt'
    note.write_text('first try')
    with mlflow.start_run(run_name='baseline', description='a first look') as run:
        mlflow.log_param('learning_rate', 0.01)
        mlflow.log_params({'optimizer': 'adam', 'layers': 3, 'dropout': None})
        for step in range(10):
            mlflow.log_metric('loss', 1.0 / (step + 1), step=step)
        mlflow.log_metrics({'accuracy': 0.9, 'f1': 0.8})
        mlflow.set_tag('team', 'vision')
        mlflow.set_tags({'flag': ''})
        mlflow.log_artifact(str(note))
        mlflow.log_dict({'a': 1}, 'config/settings.json')
        run_id = run.info.run_id

    client = MlflowClient()
    got = client.get_run(run_id)
    assert got.info.status == 'FINISHED'
    assert got.info.run_name == 'baseline'
    assert got.info.experiment_id == exp_id
    assert got.info.lifecycle_stage == 'active'
    assert got.info.end_time >= got.info.start_time
    assert got.data.params == {'learning_rate': '0.01', 'optimizer': 'adam', 'layers': '3',
                               'dropout': 'None'}
    assert got.data.metrics == {'loss': 0.1, 'accuracy': 0.9, 'f1': 0.8}
    assert got.data.tags['team'] == 'vision'
    assert got.data.tags['flag'] == ''
    assert got.data.tags['mlflow.runName'] == 'baseline'
    assert got.data.tags['mlflow.note.content'] == 'a first look'
    history = client.get_metric_history(run_id, 'loss')
    assert [m.step for m in history] == list(range(10))
    assert [m.value for m in history] == [1.0 / (s + 1) for s in range(10)]
    assert all(m.timestamp >= got.info.start_time for m in history)

    # artifacts: listed and downloaded through MLflow's client, kept in the folder
    names = sorted(f.path for f in client.list_artifacts(run_id))
    assert names == ['config', 'notes.txt']
    assert [f.path for f in client.list_artifacts(run_id, 'config')] == \
        ['config/settings.json']
    local = client.download_artifacts(run_id, 'notes.txt', str(tmp_path / 'dl'))
    assert open(local).read() == 'first try'
    assert mlflow.artifacts.load_dict(f'{got.info.artifact_uri}/config/settings.json') == \
        {'a': 1}

    # the same run through the Aim SDK: props, params (strings and typed), series
    repo = Repo(aimkit_mlflow.repo)
    aim_run = repo.get_run(run_id)
    assert aim_run.name == 'baseline'
    assert aim_run.experiment == 'quick-start'
    assert aim_run.description == 'a first look'
    assert sorted(aim_run.tags) == ['flag', 'team=vision']
    assert aim_run['params'] == {'learning_rate': '0.01', 'optimizer': 'adam', 'layers': '3',
                                 'dropout': 'None'}
    assert aim_run['hparams'] == {'learning_rate': 0.01, 'optimizer': 'adam', 'layers': 3,
                                  'dropout': None}
    assert aim_run['mlflow']['status'] == 'FINISHED'
    assert not aim_run.active and aim_run.end_time is not None
    loss = aim_run.get_metric('loss')
    assert loss.steps.tolist() == list(range(10))
    assert loss.values_numpy().tolist() == [1.0 / (s + 1) for s in range(10)]
    assert [round(t * 1000) for t in loss.timestamps.tolist()] == [m.timestamp for m in history]
    # and its query language sees the typed copy
    found = [r.run.hash for r in repo.query_runs('run.hparams.learning_rate < 0.05 and '
                                                 "run.experiment == 'quick-start'")]
    assert found == [run_id]


def test_run_tracked_with_the_aim_sdk_is_visible_to_mlflow(aimkit_mlflow):
    from mlflow import MlflowClient

    from aim import Run
    run = Run(repo=aimkit_mlflow.server.url.replace('http', 'aim'), experiment='sdk-exp',
              system_tracking_interval=None, capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.001, 'arch': {'depth': 50}}
    run.add_tag('resnet')
    for step in range(100):
        run.track(float(step), name='loss', step=step, context={'subset': 'train'})
        run.track(2.0 * step, name='acc', step=step)
    run.close()

    client = MlflowClient()
    exp = client.get_experiment_by_name('sdk-exp')
    assert exp is not None and exp.lifecycle_stage == 'active'
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [run.hash]
    got = runs[0]
    assert got.info.status == 'FINISHED'
    assert got.data.params == {'hparams.lr': '0.001', 'hparams.arch.depth': '50'}
    assert got.data.metrics == {'acc': 198.0, 'loss (subset=train)': 99.0}
    assert got.data.tags['resnet'] == ''
    history = client.get_metric_history(run.hash, 'loss (subset=train)')
    assert [(m.step, m.value) for m in history] == [(s, float(s)) for s in range(100)]
    import mlflow
    df = mlflow.search_runs(experiment_names=['sdk-exp'], filter_string='metrics.acc > 100')
    assert df['run_id'].tolist() == [run.hash]
    # MLflow writing to a run of the SDK: the param joins its tree, its own params stay
    client.set_tag(run.hash, 'reviewed', 'yes')
    client.log_param(run.hash, 'note', 'checked')
    got = client.get_run(run.hash)
    assert got.data.params == {'hparams.lr': '0.001', 'hparams.arch.depth': '50',
                               'note': 'checked'}
    assert got.data.tags['reviewed'] == 'yes' and got.info.status == 'FINISHED'
    with pytest.raises(Exception, match='Changing param values is not allowed'):
        client.log_param(run.hash, 'hparams.lr', '0.5')
    with pytest.raises(Exception, match="param key 'mlflow' is reserved"):
        client.log_param(run.hash, 'mlflow', 'x')
    from aim import Repo
    sdk_view = Repo(aimkit_mlflow.repo).get_run(run.hash)
    assert sdk_view['note'] == 'checked' and sdk_view['hparams']['lr'] == 0.001
    assert sorted(sdk_view.tags) == ['resnet', 'reviewed=yes']


def test_default_experiment_is_aimkits_default(aimkit_mlflow):
    from mlflow import MlflowClient

    from aim import Repo, Run
    run = Run(repo=aimkit_mlflow.repo, system_tracking_interval=None,
              capture_terminal_logs=False)
    run.track(1.0, name='x', step=0)
    run.close()
    client = MlflowClient()
    default = client.get_experiment('0')
    assert default.name == 'Default'
    assert client.get_experiment_by_name('Default').experiment_id == '0'
    assert run.hash in [r.info.run_id for r in client.search_runs(['0'])]
    created = client.create_run('0', run_name='in-default')
    client.set_terminated(created.info.run_id)
    assert Repo(aimkit_mlflow.repo).get_run(created.info.run_id).experiment == 'default'


def test_nan_and_infinite_metrics_round_trip(aimkit_mlflow):
    from mlflow import MlflowClient
    client = MlflowClient()
    exp = client.create_experiment('nan-exp')
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, 'odd', float('nan'), step=0)
    client.log_metric(run.info.run_id, 'odd', float('inf'), step=1)
    client.log_metric(run.info.run_id, 'odd', float('-inf'), step=2)
    values = [m.value for m in client.get_metric_history(run.info.run_id, 'odd')]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf]
    assert client.get_run(run.info.run_id).data.metrics['odd'] == -math.inf


def test_tags_deleted_and_mirrored(aimkit_mlflow):
    from mlflow import MlflowClient

    from aim import Repo
    client = MlflowClient()
    exp = client.create_experiment('tag-exp')
    run = client.create_run(exp, tags={'k': 'v', 'mlflow.source.name': 'train.py',
                                       'long': 'x' * 1000})
    rid = run.info.run_id
    client.set_tag(rid, 'k', 'w')
    client.set_tag(rid, 'mlflow.note.content', 'described')
    aim_run = Repo(aimkit_mlflow.repo).get_run(rid)
    assert aim_run.tags == ['k=w']          # a 1,000-character value is no label
    assert aim_run.description == 'described'
    tags = client.get_run(rid).data.tags
    assert tags['k'] == 'w' and tags['long'] == 'x' * 1000
    assert tags['mlflow.source.name'] == 'train.py'
    client.delete_tag(rid, 'k')
    client.delete_tag(rid, 'long')
    tags = client.get_run(rid).data.tags
    assert 'k' not in tags and 'long' not in tags
    assert Repo(aimkit_mlflow.repo).get_run(rid).tags == []
    with pytest.raises(Exception, match='RESOURCE_DOES_NOT_EXIST'):
        client.delete_tag(rid, 'k')
    client.set_terminated(rid)


def test_log_inputs_is_kept(aimkit_mlflow):
    import mlflow
    import numpy as np
    mlflow.set_experiment('inputs-exp')
    data = mlflow.data.from_numpy(np.arange(12.0).reshape(4, 3), name='tiny')
    with mlflow.start_run() as run:
        mlflow.log_input(data, context='train')
    got = mlflow.MlflowClient().get_run(run.info.run_id)
    [inp] = got.inputs.dataset_inputs
    assert inp.dataset.name == 'tiny' and inp.dataset.digest == data.digest
    assert {t.key: t.value for t in inp.tags} == {'mlflow.data.context': 'train'}
    found = mlflow.search_runs(experiment_names=['inputs-exp'],
                               filter_string="datasets.name = 'tiny'")
    assert found['run_id'].tolist() == [run.info.run_id]
    params = json.loads(json.dumps(got.data.params))
    assert params == {}
