import warnings

import pytest

import aim
from aim.errors import AimError

pytest.importorskip('aim.sdk.collections', reason='the query API is not in this tree yet')


@pytest.fixture
def two_runs(repo_dir):
    hashes = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        for lr in (0.1, 0.01):
            session = aim.Session(repo=repo_dir, system_tracking_interval=None)
            session.set_params({'lr': lr}, name='hparams')
            for i in range(3):
                session.track(lr * i, name='loss', subset='train')
            hashes.append(session.run_hash)
            session.close()
    return hashes


def test_select_metrics_is_the_metric_query(repo_dir, two_runs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        found = list(aim.select_metrics("metric.name == 'loss' and run.hparams.lr > 0.05",
                                        repo_path=repo_dir))
    assert [m.run.hash for m in found] == [two_runs[0]]
    assert found[0].context == {'subset': 'train'}
    assert found[0].values.values_list() == pytest.approx([0.0, 0.1, 0.2])


def test_select_runs_with_and_without_expression(repo_dir, two_runs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        everything = aim.select_runs(repo_path=repo_dir)
        small_lr = aim.select_runs('run.hparams.lr < 0.05', repo_path=repo_dir)
    assert {run.hash for run in _runs(everything)} == set(two_runs)
    assert [run.hash for run in _runs(small_lr)] == [two_runs[1]]


def _runs(collection):
    iter_runs = getattr(collection, 'iter_runs', None)
    items = iter_runs() if iter_runs is not None else iter(collection)
    return [getattr(item, 'run', item) for item in items]


def test_select_on_a_missing_repository_says_so(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        with pytest.raises(AimError):
            aim.select_runs(repo_path=str(tmp_path / 'nowhere'))
