"""Adapters are importable as aim.<framework>, and `import aim` imports no framework."""
import importlib
import importlib.util
import subprocess
import sys

import pytest

ADAPTERS = {
    'pytorch_lightning': ('lightning', ['AimLogger', 'logger_class_for']),
    'hugging_face': ('transformers', ['AimCallback']),
    'keras': ('keras', ['AimCallback']),
    'tensorflow': ('tensorflow', ['AimCallback']),
    'xgboost': ('xgboost', ['AimCallback']),
    'lightgbm': ('lightgbm', ['AimCallback']),
    'optuna': ('optuna', ['AimCallback']),
    'pytorch': (None, ['track_gradients_dists', 'track_params_dists']),
}
FRAMEWORKS = ['torch', 'lightning', 'pytorch_lightning', 'transformers', 'keras',
              'tensorflow', 'xgboost', 'lightgbm', 'optuna']


@pytest.mark.parametrize('name', sorted(ADAPTERS))
def test_alias_module_re_exports_the_adapter(name):
    framework, names = ADAPTERS[name]
    if framework is not None and importlib.util.find_spec(framework) is None:
        pytest.skip(f'{framework} is not installed')
    alias = importlib.import_module(f'aim.{name}')
    adapter = importlib.import_module(f'aim.sdk.adapters.{name}')
    assert alias.__all__ == adapter.__all__ == sorted(names)
    for exported in names:
        assert getattr(alias, exported) is getattr(adapter, exported)


def test_import_aim_and_the_shared_adapter_code_import_no_framework():
    code = ('import sys, aim, aim.sdk.adapters, aim.sdk.adapters.adapter_run, '
            'aim.sdk.adapters.keras_callback, aim.sdk.adapters.pytorch, aim.sdk.legacy; '
            f'print([m for m in {FRAMEWORKS!r} if m in sys.modules])')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'
