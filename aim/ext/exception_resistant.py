"""Safe mode: whether errors inside Run's public calls reach the training script.

By default an error raised in ``Run(...)``, ``run.track(...)`` or ``run[key] = value``
propagates (bad input is a bug in the script and should be seen). With
``enable_safe_mode()`` such an error is reported through a callback (by default a
``logging`` error, once per distinct message) and the call returns None, so a long
training job is not stopped by its tracker. ``set_exception_callback(cb)`` installs a
custom handler ``cb(exception, function)``.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable

ExceptionCallback = Callable[[BaseException, Callable], None]

_lock = threading.Lock()
_safe_mode = False
_reported: set[str] = set()


def _log_exception(exc: BaseException, func: Callable) -> None:
    message = f'Exception "{exc}" raised in function "{getattr(func, "__name__", func)}"'
    with _lock:
        if message in _reported:
            return
        _reported.add(message)
    import logging  # only when an error is reported: `import aim` stays cheap
    logging.getLogger('aim').error(
        '%s; aim safe mode is on, so the call was skipped and training goes on.', message)


_callback: ExceptionCallback = _log_exception


def enable_safe_mode() -> None:
    """Report errors in Run's public calls through the callback instead of raising them."""
    global _safe_mode
    _safe_mode = True


def disable_safe_mode() -> None:
    """Let errors in Run's public calls propagate again (the default)."""
    global _safe_mode
    _safe_mode = False


def is_safe_mode_enabled() -> bool:
    return _safe_mode


def set_exception_callback(callback: ExceptionCallback | None) -> None:
    """Install ``callback(exception, function)`` for errors swallowed in safe mode;
    ``None`` restores the default (log each distinct error once)."""
    global _callback
    if callback is not None and not callable(callback):
        raise TypeError(f'the exception callback must be callable, got '
                        f'{type(callback).__name__}')
    _callback = callback if callback is not None else _log_exception


def handle_exception(exc: BaseException, func: Callable) -> None:
    """Pass an error swallowed in safe mode to the callback; a failing callback only logs."""
    try:
        _callback(exc, func)
    except Exception as callback_error:
        import logging
        logging.getLogger('aim').error('aim: the safe-mode exception callback failed (%s)',
                                       callback_error)


def noexcept(func: Callable) -> Callable:
    """Decorate a public call so that, in safe mode, its errors go to the callback."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if not _safe_mode:
            return func(*args, **kwargs)
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            handle_exception(exc, func)
            return None
    return wrapper


__all__ = ['disable_safe_mode', 'enable_safe_mode', 'handle_exception',
           'is_safe_mode_enabled', 'noexcept', 'set_exception_callback']
