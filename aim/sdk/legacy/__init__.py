"""The Aim 2 API, kept so that Aim 2 scripts run unchanged (deprecated).

``aim.Session`` wraps a :class:`aim.Run`; ``aim.init``, ``aim.track``, ``aim.set_params``
and ``aim.flush`` use a default session created on first use; ``aim.select_runs`` and
``aim.select_metrics`` are :meth:`aim.Repo.query_runs` and :meth:`aim.Repo.query_metrics`.
Each name warns with a ``DeprecationWarning`` the first time it is used.
"""
from aim.sdk.legacy.queries import select_metrics, select_runs
from aim.sdk.legacy.session import Session, flush, init, set_params, track

__all__ = ['Session', 'flush', 'init', 'select_metrics', 'select_runs', 'set_params', 'track']
