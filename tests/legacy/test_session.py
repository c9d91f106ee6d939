import math
import warnings

import pytest

import aim
from aim import Repo, Run


def quiet_session(repo_dir, **kwargs):
    kwargs.setdefault('system_tracking_interval', None)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return aim.Session(repo=repo_dir, **kwargs)


def test_session_tracks_with_keyword_context(repo_dir, metrics_of):
    session = quiet_session(repo_dir, experiment='legacy')
    session.track(0.5, name='loss', epoch=1, subset='train', __internal='dropped')
    session.track(0.25, name='loss', subset='train')
    session.track(0.9, name='acc', step=7, context={'subset': 'val', 'fold': 2})
    run_hash = session.run_hash
    assert session.repo_path == Repo.from_path(repo_dir).path
    session.close()

    metrics = metrics_of(repo_dir, run_hash)
    assert set(metrics) == {('loss', (('subset', 'train'),)),
                            ('acc', (('fold', 2), ('subset', 'val')))}
    loss = metrics['loss', (('subset', 'train'),)]
    assert loss.values.values_list() == [0.5, 0.25]
    assert loss.steps.tolist() == [0, 1]
    assert loss.epochs[0] == 1 and math.isnan(loss.epochs[1])
    assert metrics['acc', (('fold', 2), ('subset', 'val'))].steps.tolist() == [7]
    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run.experiment == 'legacy' and not run.active and run.end_time is not None


def test_set_params_with_name_sets_one_key_and_without_replaces_all(repo_dir):
    session = quiet_session(repo_dir)
    session.set_params({'lr': 0.1, 'layers': [64, 32]}, name='hparams')
    session.set_params({'name': 'resnet'}, name='model')
    assert session.run['hparams'] == {'lr': 0.1, 'layers': [64, 32]}
    session.set_params({'seed': 7})
    assert session.run[...] == {'seed': 7}
    with pytest.raises(TypeError, match='name='):
        session.set_params([1, 2])
    run_hash = session.run_hash
    session.close()
    assert Repo.from_path(repo_dir).get_run(run_hash)['seed'] == 7


def test_session_continues_a_run_given_its_hash(repo_dir, metrics_of):
    first = quiet_session(repo_dir)
    first.track(1.0, name='loss')
    run_hash = first.run_hash
    first.close()
    second = quiet_session(repo_dir, run=run_hash)
    second.track(2.0, name='loss')
    second.close()
    assert second.run_hash == run_hash
    loss = metrics_of(repo_dir, run_hash)['loss', ()]
    assert loss.values.values_list() == [1.0, 2.0]


def test_session_wraps_a_run_it_does_not_close(repo_dir):
    run = Run(repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False)
    session = quiet_session(repo_dir, run=run)
    session.track(3.0, name='x')
    session.close()
    assert run.active
    run.track(4.0, name='x')
    run.close()


def test_each_legacy_name_warns_once(repo_dir, monkeypatch):
    monkeypatch.chdir(repo_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for _ in range(2):
            aim.Session(system_tracking_interval=None).close()
            aim.track(1.0, name='loss')
            aim.set_params({'a': 1}, name='p')
            aim.flush()
    deprecations = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert len(deprecations) == 4
    assert {m.split(' ')[0] for m in deprecations} == {
        'aim.Session', 'aim.track', 'aim.set_params', 'aim.flush'}
    assert all(w.filename == __file__ for w in caught if w.category is DeprecationWarning)


def test_default_session_functions(repo_dir, metrics_of):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        first = aim.init(repo=repo_dir, experiment='first', system_tracking_interval=None)
        aim.track(1.0, name='loss', subset='train')
        second = aim.init(repo=repo_dir, experiment='second', system_tracking_interval=None)
        aim.track(2.0, name='loss', subset='train')
        aim.set_params({'lr': 0.01}, name='hparams')
        aim.flush()
    assert not first.active and second.active
    assert first.run_hash != second.run_hash
    second.close()
    repo = Repo.from_path(repo_dir)
    assert repo.get_run(second.run_hash)['hparams'] == {'lr': 0.01}
    assert repo.get_run(second.run_hash).experiment == 'second'
    loss = metrics_of(repo_dir, first.run_hash)['loss', (('subset', 'train'),)]
    assert loss.values.values_list() == [1.0]


def test_legacy_exports():
    from aim.sdk import legacy

    assert legacy.__all__ == sorted(legacy.__all__)
    assert set(legacy.__all__) == {'Session', 'flush', 'init', 'select_metrics',
                                   'select_runs', 'set_params', 'track'}
    for name in legacy.__all__:
        assert getattr(aim, name) is getattr(legacy, name)
