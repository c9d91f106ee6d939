import pytest

from aim import Repo

xgb = pytest.importorskip('xgboost')
np = pytest.importorskip('numpy')

from aim.xgboost import AimCallback  # noqa: E402

pytestmark = pytest.mark.adapters

PARAMS = {'objective': 'reg:squarederror', 'max_depth': 2, 'eta': 0.3, 'nthread': 1}


@pytest.fixture
def matrices():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=64)
    return xgb.DMatrix(x[:48], label=y[:48]), xgb.DMatrix(x[48:], label=y[48:])


def test_every_round_of_every_eval_set_at_its_own_step(repo_dir, quiet, metrics_of, matrices):
    train, valid = matrices
    history: dict = {}
    callback = AimCallback(repo=repo_dir, experiment='xgb', **quiet)
    xgb.train(PARAMS, train, num_boost_round=5, evals=[(train, 'train'), (valid, 'valid')],
              evals_result=history, callbacks=[callback], verbose_eval=False)

    run_hash = callback.run_hash
    metrics = metrics_of(repo_dir, run_hash)
    assert set(metrics) == {('rmse', (('subset', 'train'),)), ('rmse', (('subset', 'valid'),))}
    for subset in ('train', 'valid'):
        rmse = metrics('rmse', subset=subset)
        assert rmse.steps.tolist() == [0, 1, 2, 3, 4]
        assert rmse.values.values_list() == pytest.approx(history[subset]['rmse'])
    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run.experiment == 'xgb' and not run.active  # closed when training ended
    assert run['xgboost']['learner']['objective']['name'] == 'reg:squarederror'


def test_continued_training_continues_steps_in_the_same_run(repo_dir, quiet, metrics_of,
                                                            matrices):
    train, _ = matrices
    first = AimCallback(repo=repo_dir, **quiet)
    booster = xgb.train(PARAMS, train, num_boost_round=3, evals=[(train, 'train')],
                        callbacks=[first], verbose_eval=False)
    second = AimCallback(repo=repo_dir, run_hash=first.run_hash, **quiet)
    xgb.train(PARAMS, train, num_boost_round=2, evals=[(train, 'train')], xgb_model=booster,
              callbacks=[second], verbose_eval=False)
    assert Repo.from_path(repo_dir).list_all_runs() == [first.run_hash]
    rmse = metrics_of(repo_dir, first.run_hash)('rmse', subset='train')
    assert rmse.steps.tolist() == [0, 1, 2, 3, 4]


def test_cv_tracks_mean_and_std(repo_dir, quiet, metrics_of, matrices, only_run):
    train, _ = matrices
    results = xgb.cv(PARAMS, train, num_boost_round=3, nfold=3, seed=0,
                     callbacks=[AimCallback(repo=repo_dir, **quiet)])
    metrics = metrics_of(repo_dir, only_run())
    mean = metrics('rmse', subset='test')
    std = metrics('rmse', subset='test', stdv=True)
    assert mean.steps.tolist() == [0, 1, 2]
    assert mean.values.values_list() == pytest.approx(list(results['test-rmse-mean']))
    assert std.values.values_list() == pytest.approx(list(results['test-rmse-std']))
    assert metrics('rmse', subset='train').count == 3


def test_only_rank_zero_writes(repo_dir, quiet, matrices, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    train, _ = matrices
    xgb.train(PARAMS, train, num_boost_round=2, evals=[(train, 'train')],
              callbacks=[AimCallback(repo=repo_dir, **quiet)], verbose_eval=False)
    assert Repo.from_path(repo_dir).list_all_runs() == []


def test_default_side_channels_do_not_disturb_training(repo_dir, metrics_of, matrices,
                                                       only_run):
    train, _ = matrices
    xgb.train(PARAMS, train, num_boost_round=2, evals=[(train, 'train')],
              callbacks=[AimCallback(repo=repo_dir)], verbose_eval=False)
    run_hash = only_run()
    assert metrics_of(repo_dir, run_hash)('rmse', subset='train').count == 2
    assert '__system_params' in Repo.from_path(repo_dir).get_run(run_hash)[...]
