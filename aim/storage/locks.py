"""Run write locks that die with their process.

A POSIX record lock (``fcntl.lockf``) is released by the kernel when its process exits,
however it exits, so a lock never outlives its writer. POSIX locks are per process: a
forked child does not inherit them, and closing *any* descriptor of the lock file drops
the process' lock — so this module keeps one descriptor per locked run and never opens
a file that this process has locked (see ``_held``).

A lock path is never followed when it is a symbolic link (``O_NOFOLLOW``): the pid
written into it would land in whatever file the link names. A lock path that is not a
regular file (a directory, a link, a device) cannot be locked by anyone, so it never means
a live writer: ``path_problem`` names it, ``try_acquire`` raises ``LockPathError``.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading

from aim.errors import RepositoryError

_held: dict[str, int] = {}   # lock path -> fd, for locks held by this process
_held_lock = threading.Lock()


def _forget_after_fork() -> None:
    _held.clear()  # the child holds none of the parent's locks


os.register_at_fork(after_in_child=_forget_after_fork)


_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK   # NONBLOCK: a FIFO in its place must not hang


class LockPathError(RepositoryError):
    """A lock path that is not a regular file (see ``path_problem``)."""


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot serve as a lock file, or None (a regular file, or nothing yet)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f'cannot be examined ({e.strerror})'
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = '?'
        return f'is a symbolic link (to {target}), not a lock file'
    if stat.S_ISDIR(st.st_mode):
        return 'is a directory, not a lock file'
    return 'is a special file, not a lock file'


def _open_lock(path: str, flags: int) -> int:
    """Open a lock file without following a link; raises LockPathError for a path that is
    not a regular file."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise LockPathError(f'{path} {path_problem(path) or "is not a lock file"}; move '
                                f'it out of the way, then try again.', path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockPathError(f'{path} {path_problem(path) or "is not a lock file"}; move it '
                            f'out of the way, then try again.', path)
    return fd


def try_acquire(path: str) -> tuple[bool, int | None]:
    """Try to lock ``path`` for writing. Returns (acquired, pid of the holder if not).
    Raises LockPathError if ``path`` is not a regular file."""
    with _held_lock:
        if path in _held:
            return False, os.getpid()
        try:
            fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:
            # the locks folder was deleted: recreate it, or no dead run could be recovered
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
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
    """True if some live process (this one included) holds the lock. A path that is not a
    regular file is never locked (no process can lock it): see ``path_problem``."""
    if path in _held:
        return True
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except (OSError, LockPathError):
        return False
    return held_by_another(fd, fcntl.LOCK_SH)


def held_by_another(fd: int, kind: int) -> bool:
    """Whether another process holds a record lock on the open file ``fd`` that conflicts
    with one of ``kind`` (``fcntl.LOCK_SH`` or ``LOCK_EX``); closes ``fd``. Closing a
    descriptor drops this process' own locks on the file: never probe a file it holds."""
    try:
        fcntl.lockf(fd, kind | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EACCES, errno.EAGAIN)
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def holder_pid(path: str) -> int | None:
    if path in _held:
        return os.getpid()
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except (OSError, LockPathError):
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
