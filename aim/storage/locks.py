"""Run write locks that die with their process.

A POSIX record lock (``fcntl.lockf``) is released by the kernel when its process exits,
however it exits, so a lock never outlives its writer. POSIX locks are per process: a
forked child does not inherit them, and closing *any* descriptor of the lock file drops
the process' lock — so this module keeps one descriptor per locked run and never opens
a file that this process has locked (see ``_held``).
"""
from __future__ import annotations

import errno
import fcntl
import os
import threading

_held: dict[str, int] = {}   # lock path -> fd, for locks held by this process
_held_lock = threading.Lock()


def _forget_after_fork() -> None:
    _held.clear()  # the child holds none of the parent's locks


os.register_at_fork(after_in_child=_forget_after_fork)


def try_acquire(path: str) -> tuple[bool, int | None]:
    """Try to lock ``path`` for writing. Returns (acquired, pid of the holder if not)."""
    with _held_lock:
        if path in _held:
            return False, os.getpid()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            # the locks folder was deleted: recreate it, or no dead run could be recovered
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                os.close(fd)
                raise
            holder = _read_pid(fd)
            os.close(fd)
            return False, holder
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held[path] = fd
        return True, None


def release(path: str) -> None:
    with _held_lock:
        fd = _held.pop(path, None)
        if fd is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def held_here(path: str) -> bool:
    return path in _held


def is_locked(path: str) -> bool:
    """True if some live process (this one included) holds the lock."""
    if path in _held:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def holder_pid(path: str) -> int | None:
    if path in _held:
        return os.getpid()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_pid(fd)
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
