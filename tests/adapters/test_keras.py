"""The Keras callback, trained through Keras 3 on the torch backend (no TensorFlow)."""
import pytest

from aim import Repo

keras = pytest.importorskip('keras')
np = pytest.importorskip('numpy')

from aim.keras import AimCallback  # noqa: E402

pytestmark = pytest.mark.adapters


def tiny_model(learning_rate=0.01):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation='relu'),
                              keras.layers.Dense(1)], name='tiny')
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss='mse',
                  metrics=['mae'])
    return model


def data(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype('float32')
    return x, (x.sum(axis=1, keepdims=True) * 0.5).astype('float32')


def test_epoch_logs_with_subset_context_lr_and_configs(repo_dir, quiet, metrics_of, only_run):
    x, y = data()
    model = tiny_model()
    history = model.fit(x[:24], y[:24], validation_data=(x[24:], y[24:]), epochs=3,
                        batch_size=8, verbose=0,
                        callbacks=[AimCallback(repo=repo_dir, experiment='keras', **quiet)])
    run_hash = only_run()
    metrics = metrics_of(repo_dir, run_hash)
    assert set(metrics) == {(name, (('subset', subset),)) for name in ('loss', 'mae')
                            for subset in ('train', 'val')} | {('lr', ())}
    for logged, name, subset in [('loss', 'loss', 'train'), ('val_loss', 'loss', 'val'),
                                 ('mae', 'mae', 'train'), ('val_mae', 'mae', 'val')]:
        metric = metrics(name, subset=subset)
        assert metric.steps.tolist() == [0, 1, 2] and metric.epochs.tolist() == [0, 1, 2]
        assert metric.values.values_list() == pytest.approx(history.history[logged])
    assert metrics('lr').values.values_list() == pytest.approx([0.01] * 3)

    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run.experiment == 'keras' and not run.active
    assert run['hparams']['epochs'] == 3 and run['hparams']['steps'] == 3
    assert run['model']['class'] == 'Sequential' and run['model']['name'] == 'tiny'
    assert run['optimizer']['config']['learning_rate'] == pytest.approx(0.01)


def test_batch_logs_at_the_global_batch_number(repo_dir, quiet, metrics_of, only_run):
    x, y = data()
    model = tiny_model()
    callback = AimCallback(repo=repo_dir, batch_log_interval=2, **quiet)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    model.fit(x, y, epochs=3, initial_epoch=2, batch_size=8, verbose=0, callbacks=[callback])
    metrics = metrics_of(repo_dir, only_run())  # the second fit reopened the same run
    batch_loss = metrics('loss', subset='train', batch=True)
    assert batch_loss.steps.tolist() == [2, 4, 6, 8, 10, 12]
    assert metrics('loss', subset='train').steps.tolist() == [0, 1, 2]


def test_continues_a_run_and_keeps_its_params(repo_dir, quiet, metrics_of):
    x, y = data()
    first = AimCallback(repo=repo_dir, **quiet)
    tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[first])
    run_hash = first.run_hash
    resumed = AimCallback(repo=repo_dir, run_hash=run_hash, **quiet)
    tiny_model().fit(x, y, epochs=2, initial_epoch=1, verbose=0, callbacks=[resumed])
    assert Repo.from_path(repo_dir).list_all_runs() == [run_hash]
    assert metrics_of(repo_dir, run_hash)('loss', subset='train').steps.tolist() == [0, 1]


def test_bad_batch_interval_is_refused():
    with pytest.raises(ValueError, match='batch_log_interval'):
        AimCallback(batch_log_interval=0)
