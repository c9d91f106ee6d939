"""The rest of Aim 3.29's integrations, each training a tiny model with the real library
on CPU: pytorch_ignite, catboost, fastai, keras_tuner, sb3, prophet. (Optuna's
track_in_aim: test_optuna_track_in_aim.py; distributed Hugging Face:
test_distributed_hugging_face.py.)"""
import importlib
import logging

import numpy as np
import pytest

from aim import Repo

QUIET = dict(system_tracking_interval=None, log_system_params=False,
             capture_terminal_logs=False)


def _only_run(repo):
    runs = list(Repo(repo.root_path).iter_runs())
    assert len(runs) == 1, [r.hash for r in runs]
    return runs[0]


def test_alias_modules_and_import_aim_stays_light():
    import aim
    for name in ('pytorch_ignite', 'catboost', 'fastai', 'keras_tuner', 'sb3', 'prophet',
                 'distributed_hugging_face'):
        assert name in aim._ADAPTERS
    import subprocess
    import sys
    out = subprocess.run([sys.executable, '-c', 'import aim, sys; print(sorted(m for m in '
                          '("ignite", "catboost", "fastai", "keras_tuner", '
                          '"stable_baselines3", "prophet", "transformers") '
                          'if m in sys.modules))'], capture_output=True, text=True)
    assert out.stdout.strip() == '[]'


def test_pytorch_ignite(new_repo):
    torch = pytest.importorskip('torch')
    pytest.importorskip('ignite')
    from ignite.engine import Events, create_supervised_evaluator, create_supervised_trainer
    from ignite.handlers import global_step_from_engine
    from ignite.metrics import Accuracy, Loss

    from aim.pytorch_ignite import AimLogger
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    y = (x[:, 0] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = torch.nn.CrossEntropyLoss()
    trainer = create_supervised_trainer(model, optimizer, criterion)
    evaluator = create_supervised_evaluator(model, metrics={'accuracy': Accuracy(),
                                                            'nll': Loss(criterion)})
    logger = AimLogger(repo=new_repo.root_path, experiment='ignite', **QUIET)
    logger.log_params({'lr': 0.1, 'batch_size': 8})
    logger.attach_output_handler(trainer, event_name=Events.ITERATION_COMPLETED, tag='train',
                                 output_transform=lambda loss: {'loss': loss})
    logger.attach_output_handler(evaluator, event_name=Events.EPOCH_COMPLETED, tag='val',
                                 metric_names=['nll', 'accuracy'],
                                 global_step_transform=global_step_from_engine(trainer))
    logger.attach_opt_params_handler(trainer, event_name=Events.ITERATION_STARTED,
                                     optimizer=optimizer)

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine):
        evaluator.run(loader)

    trainer.run(loader, max_epochs=2)
    logger.close()
    run = _only_run(new_repo)
    assert run.experiment == 'ignite' and run['hparams'] == {'lr': 0.1, 'batch_size': 8}
    loss = run.get_metric('loss', {'subset': 'train'})
    assert loss.values.sparse_numpy()[0].tolist() == list(range(1, 9))
    assert loss.epochs.tolist() == [1] * 4 + [2] * 4
    nll = run.get_metric('nll', {'subset': 'val'})
    assert nll.values.sparse_numpy()[0].tolist() == [1, 2]   # the trainer's epochs
    assert run.get_metric('accuracy', {'subset': 'val'}).count == 2
    assert run.get_metric('lr', {'param_group': 0}).values.last() == (8, 0.1)


def test_catboost(new_repo):
    catboost = pytest.importorskip('catboost')
    from aim.catboost import AimLogger
    rng = np.random.default_rng(0)
    x = rng.random((120, 3))
    y = (x[:, 0] > 0.5).astype(int)
    logger = AimLogger(loss_function='Logloss', log_cout=None, repo=new_repo.root_path,
                       experiment='cb', **QUIET)
    model = catboost.CatBoostClassifier(iterations=6, custom_metric=['Accuracy'],
                                        allow_writing_files=False, random_seed=0,
                                        verbose=1)
    model.fit(x[:90], y[:90], eval_set=(x[90:], y[90:]), log_cout=logger,
              callbacks=[logger])
    logger.close()
    run = _only_run(new_repo)
    learn = run.get_metric('Logloss', {'subset': 'learn'})
    assert learn.values.sparse_numpy()[0].tolist() == list(range(6))
    test = run.get_metric('Logloss', {'subset': 'test'}).values.values_list()
    assert test == pytest.approx(model.get_evals_result()['validation']['Logloss'], abs=1e-6)
    assert run.get_metric('Logloss', {'subset': 'test', 'best': True}).count == 6
    # the callback also brings the custom metrics, named as CatBoost names them
    assert run.get_metric('Accuracy', {'subset': 'validation'}).count == 6
    assert run['catboost']['best_iteration'] == model.get_best_iteration()


def test_fastai(new_repo):
    torch = pytest.importorskip('torch')
    pytest.importorskip('fastai')
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    from fastai.optimizer import SGD

    from aim.fastai import AimCallback
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    ds = torch.utils.data.TensorDataset(x, y)
    dls = DataLoaders(torch.utils.data.DataLoader(ds, batch_size=16),
                      torch.utils.data.DataLoader(ds, batch_size=32))
    learn = Learner(dls, torch.nn.Linear(4, 2), loss_func=torch.nn.CrossEntropyLoss(),
                    opt_func=SGD, metrics=accuracy,
                    cbs=AimCallback(repo=new_repo.root_path, experiment='fastai', **QUIET))
    with learn.no_logging():
        learn.fit(3, lr=0.1)
    run = _only_run(new_repo)
    assert run.experiment == 'fastai' and not run.active
    assert run['hparams']['model'] == 'Linear' and run['hparams']['n_epoch'] == 3
    assert run['hparams']['lr'] == 0.1
    valid = run.get_metric('loss', {'subset': 'valid'})
    assert valid.values.sparse_numpy()[0].tolist() == [0, 1, 2]
    assert valid.values.values_list() == pytest.approx(
        [row[1] for row in learn.recorder.values], rel=1e-5)
    assert run.get_metric('accuracy', {'subset': 'valid'}).count == 3
    assert run.get_metric('loss', {'subset': 'train'}).count == 3
    assert run.get_metric('loss', {'subset': 'train', 'batch': True}).count == 12


def test_keras_tuner(new_repo, tmp_path):
    pytest.importorskip('torch')
    keras_tuner = pytest.importorskip('keras_tuner')
    import keras

    from aim.keras_tuner import AimCallback
    logging.getLogger('keras_tuner').setLevel(logging.ERROR)
    rng = np.random.default_rng(0)
    x = rng.random((64, 4)).astype('float32')
    y = (x[:, 0] > 0.5).astype('float32')

    def build(hp):
        model = keras.Sequential([keras.Input((4,)),
                                  keras.layers.Dense(hp.Int('units', 2, 8, step=2),
                                                     activation='relu'),
                                  keras.layers.Dense(1, activation='sigmoid')])
        model.compile(optimizer=keras.optimizers.SGD(hp.Choice('lr', [0.01, 0.1])),
                      loss='binary_crossentropy', metrics=['accuracy'])
        return model
    tuner = keras_tuner.RandomSearch(build, objective='val_loss', max_trials=2, seed=0,
                                     directory=str(tmp_path / 'kt'), project_name='tiny')
    callback = AimCallback(tuner=tuner, repo=new_repo.root_path, experiment='kt', **QUIET)
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[callback])
    runs = list(Repo(new_repo.root_path).iter_runs())
    assert len(runs) == 2 and sorted(callback.run_hashes) == sorted(r.hash for r in runs)
    trials = {t.trial_id: t for t in tuner.oracle.trials.values()}
    for run in runs:
        trial = trials[run['trial']['trial_id']]
        assert run['hparams'] == trial.hyperparameters.values
        assert run.get_metric('loss', {'subset': 'val'}).values.sparse_numpy()[0].tolist() \
            == [0, 1]
        assert run.get_metric('accuracy', {'subset': 'train'}).count == 2
        assert not run.active


def test_stable_baselines3(new_repo, tmp_path, monkeypatch):
    pytest.importorskip('torch')
    sb3 = pytest.importorskip('stable_baselines3')
    # SB3 makes an empty SB3-<time> folder for its own logger at every learn(), in the
    # system's temporary folder unless told otherwise
    monkeypatch.setenv('SB3_LOGDIR', str(tmp_path / 'sb3-logs'))

    from aim.sb3 import AimCallback
    model = sb3.PPO('MlpPolicy', 'CartPole-v1', n_steps=64, batch_size=32, n_epochs=1,
                    seed=0, device='cpu', verbose=0)
    model.learn(total_timesteps=128, callback=AimCallback(repo=new_repo.root_path,
                                                          experiment_name='sb3', **QUIET))
    run = _only_run(new_repo)
    assert run.experiment == 'sb3' and not run.active
    assert run['hparams']['algo'] == 'PPO' and run['hparams']['n_steps'] == 64
    fps = run.get_metric('fps', {'subset': 'time'})
    assert fps is not None and fps.values.sparse_numpy()[0].tolist() == [64, 128]
    assert run.get_metric('loss', {'subset': 'train'}).values.last()[0] == 128


def test_prophet(new_repo):
    pd = pytest.importorskip('pandas')
    prophet = pytest.importorskip('prophet')
    from aim.prophet import AimLogger
    logging.getLogger('cmdstanpy').setLevel(logging.ERROR)
    days = pd.date_range('2024-01-01', periods=60, freq='D')
    df = pd.DataFrame({'ds': days, 'y': np.sin(np.arange(60) / 7.0) + np.arange(60) / 30})
    model = prophet.Prophet(changepoint_prior_scale=0.1, daily_seasonality=False)
    logger = AimLogger(prophet_model=model, repo=new_repo.root_path, experiment='prophet',
                       **QUIET)
    model.fit(df)
    forecast = model.predict(df)
    mse = float(((forecast['yhat'] - df['y']) ** 2).mean())
    logger.track_metrics({'mse': mse, 'mae': float((forecast['yhat'] - df['y']).abs().mean())})
    logger.close()
    run = _only_run(new_repo)
    assert run['hparams']['changepoint_prior_scale'] == 0.1
    assert run['hparams']['growth'] == 'linear'
    assert 'weekly' in run['hparams']['seasonalities']
    assert run.get_metric('mse').values.last() == (0, pytest.approx(mse))


@pytest.mark.parametrize('module', ['pytorch_ignite', 'catboost', 'fastai', 'keras_tuner',
                                    'sb3', 'prophet', 'distributed_hugging_face'])
def test_alias_re_exports(module):
    framework = {'pytorch_ignite': 'ignite', 'sb3': 'stable_baselines3',
                 'distributed_hugging_face': 'transformers'}.get(module, module)
    pytest.importorskip(framework)
    alias = importlib.import_module(f'aim.{module}')
    adapter = importlib.import_module(f'aim.sdk.adapters.{module}')
    assert alias.__all__ == adapter.__all__
    for name in alias.__all__:
        assert getattr(alias, name) is getattr(adapter, name)
