"""Side channels of a run: system metrics, terminal logs, environment capture.

Nothing here imports :mod:`aim.sdk`; a ``Run`` hands these classes plain callables.
Every side channel follows one rule: it never raises into the training script and
never slows it down; a failure is reported once as a warning and the channel goes on
(or stops quietly).
"""
from aim.ext.environment import collect_system_params
from aim.ext.resource_tracker import ResourceTracker
from aim.ext.terminal_capture import TerminalLogCapture

__all__ = ['ResourceTracker', 'TerminalLogCapture', 'collect_system_params']
