import pytest

from aim import Repo

lgb = pytest.importorskip('lightgbm')
np = pytest.importorskip('numpy')

from aim.lightgbm import AimCallback  # noqa: E402

pytestmark = pytest.mark.adapters

PARAMS = {'objective': 'regression', 'num_leaves': 4, 'min_data_in_leaf': 2,
          'learning_rate': 0.3, 'verbose': -1, 'num_threads': 1, 'seed': 0}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=80)
    return x, y


def test_eval_results_per_iteration_with_data_name_context(repo_dir, quiet, metrics_of, data,
                                                            only_run):
    x, y = data
    train = lgb.Dataset(x[:60], label=y[:60])
    valid = lgb.Dataset(x[60:], label=y[60:], reference=train)
    recorded: dict = {}
    lgb.train(PARAMS, train, num_boost_round=5, valid_sets=[train, valid],
              valid_names=['train', 'valid'],
              callbacks=[AimCallback(repo=repo_dir, experiment='lgb', **quiet),
                         lgb.record_evaluation(recorded)])
    run_hash = only_run()
    metrics = metrics_of(repo_dir, run_hash)
    assert set(metrics) == {('l2', (('subset', 'train'),)), ('l2', (('subset', 'valid'),))}
    for subset in ('train', 'valid'):
        l2 = metrics('l2', subset=subset)
        assert l2.steps.tolist() == [0, 1, 2, 3, 4]
        assert l2.values.values_list() == pytest.approx(recorded[subset]['l2'])
    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run['hparams']['num_leaves'] == 4 and run.experiment == 'lgb'
    assert not run.active  # closed after the last iteration


def test_round_that_early_stopping_ends_on_is_tracked(repo_dir, quiet, metrics_of, data,
                                                       only_run):
    x, y = data
    train = lgb.Dataset(x[:60], label=y[:60])
    valid = lgb.Dataset(x[:60] * 0, label=y[60:].repeat(3)[:60], reference=train)
    callback = AimCallback(repo=repo_dir, **quiet)
    recorded: dict = {}
    booster = lgb.train(PARAMS, train, num_boost_round=50, valid_sets=[valid],
                        valid_names=['valid'],
                        callbacks=[lgb.early_stopping(2, verbose=False), callback,
                                   lgb.record_evaluation(recorded)])
    callback.close()
    rounds = len(recorded['valid']['l2'])
    assert rounds < 50 and booster.best_iteration < rounds
    l2 = metrics_of(repo_dir, only_run())('l2', subset='valid')
    assert l2.steps.tolist() == list(range(rounds))


def test_cv_tracks_mean_and_std(repo_dir, quiet, metrics_of, data, only_run):
    x, y = data
    results = lgb.cv(PARAMS, lgb.Dataset(x, label=y), num_boost_round=3, nfold=3,
                     stratified=False, callbacks=[AimCallback(repo=repo_dir, **quiet)])
    metrics = metrics_of(repo_dir, only_run())
    assert metrics('l2', subset='valid').values.values_list() == pytest.approx(
        list(results['valid l2-mean']))
    assert metrics('l2', subset='valid', stdv=True).values.values_list() == pytest.approx(
        list(results['valid l2-stdv']))
