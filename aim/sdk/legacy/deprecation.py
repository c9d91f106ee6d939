"""The one-time DeprecationWarning of each legacy (Aim 2) name."""
from __future__ import annotations

import functools
import warnings

_warned: set[str] = set()


def warn_deprecated(name: str, stacklevel: int = 3) -> None:
    """Warn once per process that the legacy ``name`` is deprecated."""
    if name in _warned:
        return
    _warned.add(name)
    warnings.warn(
        f'aim.{name} is the Aim 2 legacy API and is deprecated; it keeps working, but new '
        f'code should use aim.Run (run.track(...), run[...] = ...) and aim.Repo queries.',
        DeprecationWarning, stacklevel=stacklevel)


def deprecated(function):
    """Mark a legacy function: its first call warns."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        warn_deprecated(function.__name__)
        return function(*args, **kwargs)
    return wrapper
