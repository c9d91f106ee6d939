"""aimkit: a fast, crash-proof experiment tracker with the Aim 3 SDK.

``import aim`` is cheap: numpy and every web or framework library are imported only when
first needed. The legacy (Aim 2) names are loaded on first use.
"""
from aim.sdk.repo import Repo
from aim.sdk.run import Run

__version__ = '0.1.0'

_LEGACY = ('Session', 'flush', 'init', 'select_metrics', 'select_runs', 'set_params', 'track')
_ADAPTERS = ('catboost', 'distributed_hugging_face', 'fastai', 'hugging_face', 'keras',
             'keras_tuner', 'lightgbm', 'optuna', 'prophet', 'pytorch', 'pytorch_ignite',
             'pytorch_lightning', 'sb3', 'tensorflow', 'xgboost')
_SDK = ('Metric',)   # aim.sdk.trace imports numpy: loaded on first use
_OBJECTS = ('Image', 'Text', 'Distribution', 'Audio', 'Figure')
_SEQUENCES = ('Images', 'Texts', 'Distributions', 'Audios', 'Figures')

__all__ = ['Audio', 'Audios', 'Distribution', 'Distributions', 'Figure', 'Figures', 'Image',
           'Images', 'Metric', 'Repo', 'Run', 'Session', 'Text', 'Texts', 'flush', 'init',
           'select_metrics', 'select_runs', 'set_params', 'track']


def __getattr__(name):
    if name in _LEGACY:
        from aim.sdk import legacy
        return getattr(legacy, name)
    if name in _SDK:
        from aim.sdk import trace
        return getattr(trace, name)
    if name in _OBJECTS:
        from aim.sdk import objects
        return getattr(objects, name)
    if name in _SEQUENCES:
        from aim.sdk import sequences
        return getattr(sequences, name)
    if name in _ADAPTERS:
        import importlib
        return importlib.import_module(f'aim.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def load_ipython_extension(ipython):
    """``%load_ext aim`` in Jupyter: the ``%aim`` magic (see :mod:`aim.notebook`)."""
    from aim.notebook import load_ipython_extension as load
    load(ipython)


def unload_ipython_extension(ipython):
    from aim.notebook import unload_ipython_extension as unload
    unload(ipython)


def __dir__():
    return sorted(set(globals()) | set(_LEGACY) | set(_SDK) | set(_OBJECTS) | set(_SEQUENCES))
