"""aim.tensorflow with real TensorFlow (tf.keras). Opt-in: TensorFlow is too heavy for CI,
which tests the same callback through Keras 3 on torch (test_keras.py). Run it with

    AIMKIT_TEST_TENSORFLOW=1 python -m pytest tests/adapters/test_tensorflow.py

in an environment where ``pip install tensorflow-cpu`` has been done. Training runs in a
child process so that TensorFlow gets its own Keras backend (this test session's Keras
runs on torch).
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from aim import Repo

pytestmark = [
    pytest.mark.adapters,
    pytest.mark.skipif(os.environ.get('AIMKIT_TEST_TENSORFLOW') != '1',
                       reason='opt-in: set AIMKIT_TEST_TENSORFLOW=1 (and install tensorflow-cpu)'),
    pytest.mark.skipif(importlib.util.find_spec('tensorflow') is None,
                       reason='tensorflow is not installed: pip install tensorflow-cpu'),
]

TRAINING = textwrap.dedent('''
    import sys
    import numpy as np
    import tensorflow as tf
    from aim.tensorflow import AimCallback

    tf.keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype('float32')
    y = x.sum(axis=1, keepdims=True)
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(4),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.01), loss='mse', metrics=['mae'])
    model.fit(x, y, validation_split=0.25, epochs=2, batch_size=8, verbose=0,
              callbacks=[AimCallback(repo=sys.argv[1], experiment='tf',
                                     system_tracking_interval=None, log_system_params=False,
                                     capture_terminal_logs=False)])
''')


def test_tf_keras_fit_is_tracked(repo_dir, metrics_of, only_run):
    env = {**os.environ, 'KERAS_BACKEND': 'tensorflow', 'TF_CPP_MIN_LOG_LEVEL': '2'}
    result = subprocess.run([sys.executable, '-c', TRAINING, repo_dir], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run_hash = only_run()
    metrics = metrics_of(repo_dir, run_hash)
    for name in ('loss', 'mae'):
        for subset in ('train', 'val'):
            metric = metrics(name, subset=subset)
            assert metric.steps.tolist() == [0, 1] and metric.epochs.tolist() == [0, 1]
    assert metrics('lr').values.values_list() == pytest.approx([0.01, 0.01])
    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run.experiment == 'tf' and run['optimizer']['class'] == 'SGD'
