import pytest

from aim import Repo

optuna = pytest.importorskip('optuna')

from aim.optuna import AimCallback  # noqa: E402

pytestmark = pytest.mark.adapters


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial):
    x = trial.suggest_float('x', -2.0, 2.0)
    layers = trial.suggest_int('layers', 1, 3)
    trial.suggest_categorical('activation', ['relu', 'tanh'])
    return (x - 0.5) ** 2 + layers


def make_study():
    return optuna.create_study(study_name='tiny-study', direction='minimize',
                               sampler=optuna.samplers.RandomSampler(seed=0))


def test_one_run_for_the_study(repo_dir, quiet, metrics_of, only_run):
    study = make_study()
    callback = AimCallback(repo=repo_dir, **quiet)
    study.optimize(objective, n_trials=4, callbacks=[callback])
    callback.close()

    run_hash = only_run()
    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run['study_name'] == 'tiny-study' and run.experiment == 'tiny-study'
    metrics = metrics_of(repo_dir, run_hash)
    value = metrics('value')
    assert value.steps.tolist() == [0, 1, 2, 3]
    assert value.values.values_list() == pytest.approx([t.value for t in study.trials])
    x = metrics('x', type='param')
    assert x.values.values_list() == pytest.approx([t.params['x'] for t in study.trials])
    assert ('activation', (('type', 'param'),)) not in metrics  # not a number


def test_one_run_per_trial(repo_dir, quiet, metrics_of):
    study = make_study()
    study.optimize(objective, n_trials=3,
                   callbacks=[AimCallback(metric_name='loss', as_multirun=True,
                                          repo=repo_dir, **quiet)])
    repo = Repo.from_path(repo_dir)
    runs = {repo.get_run(h)['trial']['number']: repo.get_run(h) for h in repo.list_all_runs()}
    assert sorted(runs) == [0, 1, 2]
    for trial in study.trials:
        run = runs[trial.number]
        assert run['hparams'] == trial.params
        assert run['study_name'] == 'tiny-study' and run['trial']['state'] == 'COMPLETE'
        assert not run.active
        loss = metrics_of(repo_dir, run.hash)('loss')
        assert loss.values.values_list() == pytest.approx([trial.value])


def test_multi_objective_names(repo_dir, quiet, metrics_of, only_run):
    study = optuna.create_study(directions=['minimize', 'maximize'],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    callback = AimCallback(metric_name=['error', 'speed'], repo=repo_dir, **quiet)
    study.optimize(lambda t: (t.suggest_float('x', 0, 1), 2.0), n_trials=2,
                   callbacks=[callback])
    callback.close()
    metrics = metrics_of(repo_dir, only_run())
    assert metrics('speed').values.values_list() == [2.0, 2.0]
    assert metrics('error').count == 2


def test_experiment_name_is_an_alias(repo_dir, quiet, only_run):
    callback = AimCallback(experiment_name='named', repo=repo_dir, **quiet)
    make_study().optimize(objective, n_trials=1, callbacks=[callback])
    callback.close()
    assert Repo.from_path(repo_dir).get_run(only_run()).experiment == 'named'
    with pytest.raises(ValueError, match='experiment_name'):
        AimCallback(experiment='a', experiment_name='b')


def test_run_hash_with_multirun_is_refused(repo_dir):
    with pytest.raises(ValueError, match='as_multirun'):
        AimCallback(as_multirun=True, run_hash='abc', repo=repo_dir)
