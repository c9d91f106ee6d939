"""Optuna: AimCallback(as_multirun=True) with @callback.track_in_aim(), as Aim's own
optuna example uses them."""
import pytest

from aim import Repo

optuna = pytest.importorskip('optuna')

from aim.optuna import AimCallback  # noqa: E402

QUIET = dict(system_tracking_interval=None, log_system_params=False,
             capture_terminal_logs=False)


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize('as_multirun', [True, False])
def test_track_in_aim_tracks_inside_the_objective(new_repo, as_multirun):
    callback = AimCallback(repo=new_repo.root_path, metric_name='loss',
                           as_multirun=as_multirun, experiment_name='optuna-example', **QUIET)
    assert callback.experiment is None or not as_multirun

    @callback.track_in_aim()
    def objective(trial):
        x = trial.suggest_float('x', -10, 10)
        for step in range(3):
            callback.experiment.track(x * step, name='x_times_step', step=step)
        return (x - 2) ** 2

    study = optuna.create_study(study_name='quadratic',
                                sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=3, callbacks=[callback])
    callback.close()
    repo = Repo(new_repo.root_path)
    runs = list(repo.iter_runs())
    if as_multirun:
        assert len(runs) == 3 and callback.experiment is None
        by_trial = {r['trial']['number']: r for r in runs}
        for trial in study.trials:
            run = by_trial[trial.number]
            assert run.experiment == 'optuna-example' and not run.active
            assert run['trial']['state'] == 'COMPLETE'
            assert run['hparams'] == {'x': trial.params['x']}
            assert run.get_metric('loss').values.last() == (0, trial.value)
            steps, values = run.get_metric('x_times_step').values.sparse_numpy()
            assert steps.tolist() == [0, 1, 2]
            assert values.tolist() == [trial.params['x'] * s for s in range(3)]
    else:
        assert len(runs) == 1
        run = runs[0]
        assert run['study_name'] == 'quadratic'
        assert run.get_metric('loss').count == 3
        # every trial tracked into the one run: the last trial's steps replace the others'
        assert run.get_metric('x_times_step').count == 3
