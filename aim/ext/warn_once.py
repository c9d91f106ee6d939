"""One warning per problem per process, for side channels that must never raise."""
from __future__ import annotations

import sys
import threading
import warnings

_seen: set[str] = set()
_seen_lock = threading.Lock()


class SideChannelWarning(RuntimeWarning):
    """A side channel (system metrics, terminal logs, environment capture) failed.

    Training goes on; only the side channel's data is missing.
    """


def warn_once(key: str, message: str) -> bool:
    """Warn with ``message`` the first time ``key`` is seen; return whether it warned."""
    with _seen_lock:
        if key in _seen:
            return False
        _seen.add(key)
    try:
        warnings.warn(message, SideChannelWarning, stacklevel=3)
    except Exception:
        # Warnings turned into errors (-W error, pytest's filterwarnings) must still not
        # stop training from a side channel: say it plainly instead.
        try:
            sys.stderr.write(f'{SideChannelWarning.__name__}: {message}\n')
        except Exception:
            pass
    return True


def forget_warnings() -> None:
    """Let every warning fire again (for tests)."""
    with _seen_lock:
        _seen.clear()
