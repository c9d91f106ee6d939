"""Side channels of a run: system metrics, terminal logs, environment capture.

Nothing here imports :mod:`aim.sdk`; a ``Run`` hands these classes plain callables.
Every side channel follows one rule: it never raises into the training script and
never slows it down; a failure is reported once as a warning and the channel goes on
(or stops quietly).

The names below load their module on first use, so that ``import aim`` (which needs
:mod:`aim.ext.exception_resistant`) does not pay for psutil, sockets or subprocesses.
"""
import importlib

_MODULES = {'ResourceTracker': 'aim.ext.resource_tracker',
            'TerminalLogCapture': 'aim.ext.terminal_capture',
            'collect_system_params': 'aim.ext.environment'}

__all__ = ['ResourceTracker', 'TerminalLogCapture', 'collect_system_params']


def __getattr__(name):
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
