"""``aim.Session`` and the default-session functions of the Aim 2 API.

A Session is a thin wrapper over an :class:`aim.Run`, so it inherits the Run's
guarantees: points are safe once ``track`` returns, and the run is closed at exit and on
SIGTERM/SIGINT. Sessions are also closed at exit here, so that ``end_time`` is written
even when a script forgets ``close()``.
"""
from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any

from aim.sdk.legacy.deprecation import deprecated, warn_deprecated

_open_sessions: weakref.WeakSet[Session] = weakref.WeakSet()
_default_session: Session | None = None
_lock = threading.Lock()


class Session:
    """An Aim 2 session: ``Session(experiment='mnist').track(0.5, name='loss', subset='val')``.

    ``run`` continues an existing run (its hash, or a Run). ``flush_frequency`` and
    ``block_termination`` are accepted for compatibility: points are journaled as they are
    tracked and flushed in the background, and the run is closed at exit either way.
    """

    def __init__(self, repo=None, experiment: str | None = None, flush_frequency: int = 0,
                 block_termination: bool = True, run=None,
                 system_tracking_interval: float | None = 10):
        warn_deprecated('Session')
        self._open(repo, experiment, run, system_tracking_interval)

    def _open(self, repo, experiment, run, system_tracking_interval) -> None:
        from aim.sdk.run import Run

        self._owns_run = not isinstance(run, Run)
        if isinstance(run, Run):
            self._run = run
        else:
            self._run = Run(run, repo=repo, experiment=experiment,
                            system_tracking_interval=system_tracking_interval)
        self.active = True
        _open_sessions.add(self)

    @property
    def run(self):
        """The :class:`aim.Run` this session writes to."""
        return self._run

    @property
    def run_hash(self) -> str:
        return self._run.hash

    @property
    def repo_path(self) -> str:
        return self._run.repo.path

    def track(self, value, name: str | None = None, step: int | None = None,
              epoch: int | None = None, **context: Any) -> None:
        """Track ``value`` as ``name``; extra keyword arguments are the context (keys that
        start with ``__`` are Aim 2 internals and are dropped). An Aim 3 style
        ``context={...}`` argument is taken as the context itself."""
        if set(context) == {'context'} and isinstance(context['context'], dict):
            context = context['context']
        context = {key: item for key, item in context.items() if not key.startswith('__')}
        self._run.track(value, name=name, step=step, epoch=epoch, context=context)

    def set_params(self, params: dict, name: str | None = None) -> None:
        """``name=None`` replaces all params with ``params``; otherwise
        ``run[name] = params``."""
        if name is not None:
            self._run[name] = params
            return
        if not isinstance(params, dict):
            raise TypeError(f'set_params(params) without a name needs a dict of params, not '
                            f'{type(params).__name__}; pass name=... to set a single key')
        # Keys starting with "__" are the library's own (system params); they stay.
        kept = {key: value for key, value in self._run[...].items() if key.startswith('__')}
        self._run[...] = {**kept, **params}

    def flush(self) -> None:
        self._run.flush()

    def close(self) -> None:
        """Close the session's run (the run is finished: its end time is set)."""
        if not self.active:
            return
        self.active = False
        _open_sessions.discard(self)
        if self._owns_run:
            self._run.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f'<Session run={self.run_hash} repo={self.repo_path!r}>'


class DefaultSession(Session):
    """The session behind ``aim.track``/``aim.set_params``; creating it does not warn,
    since the function that created it already did."""

    def __init__(self, repo=None, experiment: str | None = None, flush_frequency: int = 0,
                 block_termination: bool = True, run=None,
                 system_tracking_interval: float | None = 10):
        self._open(repo, experiment, run, system_tracking_interval)


def _close_open_sessions() -> None:
    for session in list(_open_sessions):
        session.close()


atexit.register(_close_open_sessions)


def _get_default_session() -> Session:
    global _default_session
    with _lock:
        if _default_session is None or not _default_session.active:
            _default_session = DefaultSession()
        return _default_session


@deprecated
def init(*args, **kwargs) -> Session:
    """Start the default session (closing the previous one) with ``Session``'s arguments."""
    global _default_session
    with _lock:
        if _default_session is not None:
            _default_session.close()
        _default_session = DefaultSession(*args, **kwargs)
        return _default_session


@deprecated
def track(*args, **kwargs) -> None:
    """``Session.track`` on the default session."""
    _get_default_session().track(*args, **kwargs)


@deprecated
def set_params(params: dict, name: str | None = None) -> None:
    """``Session.set_params`` on the default session."""
    _get_default_session().set_params(params, name=name)


@deprecated
def flush() -> None:
    """Flush every open session's points to disk now (they are flushed in the background
    anyway)."""
    for session in list(_open_sessions):
        session.flush()
