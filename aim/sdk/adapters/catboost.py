"""CatBoost logger: ``model.fit(X, y, eval_set=..., log_cout=AimLogger(loss_function='Logloss'))``.

As Aim's, it reads the lines CatBoost writes to ``log_cout``: each iteration's learn and
test loss become the metric ``loss_function`` with ``{'subset': 'learn' | 'test'}`` at
``step=<iteration>``, the best test loss so far ``{'subset': 'test', 'best': True}``; the
final ``bestTest`` / ``bestIteration`` and the chosen learning rate go to the ``catboost``
param. The lines are passed on to ``log_cout`` (stdout by default; None drops them).

Passed as a callback as well (``callbacks=[logger]``), it also tracks every eval metric
(custom ones included) at each iteration, named as CatBoost names them, with
``{'subset': 'learn' | <eval set name>}``.
"""
from __future__ import annotations

import re
import sys

import catboost  # noqa: F401  (the framework this adapter serves; fails early without it)

from aim.sdk.adapters.adapter_run import AdapterRun, AdapterRunAccess, as_number

__all__ = ['AimLogger']

_ITERATION = re.compile(r'^(\d+):\t(.*)$')
_NUMBER = r'([-+0-9.eE]+|nan|-?inf)'


class AimLogger(AdapterRunAccess):
    """A ``log_cout`` stream (and CatBoost callback) that tracks into an aim Run."""

    def __init__(self, loss_function: str = 'Loss', log_cout=sys.stdout, repo=None,
                 experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, run=None):
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)
        self.loss_function = loss_function
        self.log_cout = log_cout
        self._pending = ''

    # the log_cout stream -----------------------------------------------------------------
    def write(self, text: str) -> None:
        if self.log_cout is not None:
            self.log_cout.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split('\n')
        for line in lines:
            self._take_line(line)

    def flush(self) -> None:
        if self.log_cout is not None and hasattr(self.log_cout, 'flush'):
            self.log_cout.flush()

    def _take_line(self, line: str) -> None:
        match = _ITERATION.match(line)
        if match is not None:
            step = int(match.group(1))
            for part in match.group(2).split('\t'):
                key, _, rest = part.partition(':')
                numbers = re.match(r'\s*' + _NUMBER, rest)
                if key in ('learn', 'test') and numbers:
                    self._track(numbers.group(1), step, {'subset': key})
                elif key == 'best' and numbers:
                    self._track(numbers.group(1), step, {'subset': 'test', 'best': True})
            return
        for pattern, key in ((r'^bestTest = ' + _NUMBER, 'best_test'),
                             (r'^bestIteration = (\d+)', 'best_iteration'),
                             (r'^Learning rate set to ' + _NUMBER, 'learning_rate')):
            found = re.match(pattern, line)
            if found:
                value = float(found.group(1)) if key != 'best_iteration' else \
                    int(found.group(1))
                self._aim.set_params('catboost', {key: value})

    def _track(self, text: str, step: int, context: dict) -> None:
        try:
            value = float(text)
        except ValueError:
            return
        self._aim.track(value, name=self.loss_function, step=step, context=context)

    # the callback ------------------------------------------------------------------------
    def after_iteration(self, info) -> bool:
        step = info.iteration - 1   # counted from 1 here, from 0 in the log lines
        for subset, metrics in (info.metrics or {}).items():
            for name, values in metrics.items():
                value = as_number(values[-1]) if values else None
                if value is not None:
                    self._aim.track(value, name=name, step=step, context={'subset': subset})
        return True   # go on training

    def close(self) -> None:
        self._aim.close()
