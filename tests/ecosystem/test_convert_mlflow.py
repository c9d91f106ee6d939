"""`aim convert mlflow` on stores written by mlflow itself: a file store and SQLite."""
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from aim import Repo
from aim.cli.main import cli

pytest.importorskip('mlflow')

WRITER = textwrap.dedent('''
    import sys
    import mlflow
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment('search')
    with mlflow.start_run(run_name='baseline') as run:
        mlflow.log_params({'lr': 0.01, 'optimizer': 'adam', 'batch_size': 32})
        mlflow.set_tags({'team': 'vision', 'mlflow.note.content': 'first try'})
        for step in range(10):
            mlflow.log_metric('loss', 1.0 / (step + 1), step=step)
        mlflow.log_metric('val_acc', 0.7, step=9)
    mlflow.set_experiment('other')
    with mlflow.start_run(run_name='second'):
        mlflow.log_param('lr', 0.1)
        mlflow.log_metric('loss', 3.0, step=0)
    with mlflow.start_run(run_name='deleted') as gone:
        mlflow.log_metric('loss', 1.0)
    mlflow.delete_run(gone.info.run_id)
''')


def _write_store(uri: str, cwd) -> None:
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE='true')
    res = subprocess.run([sys.executable, '-c', WRITER, uri], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture(params=['file', 'sqlite'])
def store(request, tmp_path):
    if request.param == 'file':
        uri = str(tmp_path / 'mlruns')
    else:
        pytest.importorskip('sqlalchemy')
        uri = f'sqlite:///{tmp_path / "mlflow.db"}'
    _write_store(uri, tmp_path)
    return uri


def test_runs_params_metrics_tags_and_idempotence(store, new_repo, monkeypatch):
    monkeypatch.delenv('MLFLOW_ALLOW_FILE_STORE', raising=False)
    convert = ['convert', 'mlflow', '--tracking_uri', store, '--repo', new_repo.root_path]
    res = CliRunner().invoke(cli, convert)
    assert res.exit_code == 0, res.output
    assert 'Converted 2 MLflow run(s) (12 points)' in res.output
    repo = Repo(new_repo.root_path)
    runs = {r.name: r for r in repo.iter_runs()}
    assert set(runs) == {'baseline', 'second'}            # the deleted run is left out
    base = runs['baseline']
    assert base.experiment == 'search' and runs['second'].experiment == 'other'
    assert base['hparams'] == {'lr': 0.01, 'optimizer': 'adam', 'batch_size': 32}
    assert base.description == 'first try'
    assert base['mlflow']['tags']['team'] == 'vision'
    loss = base.get_metric('loss')
    steps, values = loss.values.sparse_numpy()
    assert steps.tolist() == list(range(10))
    assert values.tolist() == [1.0 / (s + 1) for s in range(10)]
    # MLflow's timestamps (ms) are the points' times; the run spans start to end
    assert base.creation_time <= loss.timestamps[0] <= loss.timestamps[-1] <= base.end_time
    assert base.get_metric('val_acc').values.last() == (9, 0.7)
    assert [i.run.name for i in repo.query_runs('run.hparams.lr < 0.05')] == ['baseline']
    again = CliRunner().invoke(cli, convert)
    assert 'Converted 0' in again.output and '2 already converted' in again.output
    assert len(list(repo.iter_runs())) == 2


def test_one_experiment_only(store, new_repo):
    res = CliRunner().invoke(cli, ['convert', 'mlflow', '--tracking_uri', store,
                                   '--experiment', 'other', '--repo', new_repo.root_path])
    assert res.exit_code == 0, res.output
    assert [r.name for r in new_repo.iter_runs()] == ['second']
    res = CliRunner().invoke(cli, ['convert', 'mlflow', '--tracking_uri', store,
                                   '--experiment', 'nope', '--repo', new_repo.root_path])
    assert res.exit_code != 0 and "No MLflow experiment named 'nope'" in res.output


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path, new_repo):
    for uri in (f'sqlite:///{tmp_path / "none" / "mlflow.db"}', str(tmp_path / 'mlruns')):
        res = CliRunner().invoke(cli, ['convert', 'mlflow', '--tracking_uri', uri,
                                       '--repo', new_repo.root_path])
        assert res.exit_code != 0 and 'No MLflow' in res.output, res.output
    assert not (tmp_path / 'none').exists() and not (tmp_path / 'mlruns').exists()
