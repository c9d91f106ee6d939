"""Errors raised by aimkit.

Every error the library raises on purpose derives from :class:`AimError`::

    AimError
    ├── RepositoryError
    │   ├── RepositoryNotFoundError
    │   ├── RepositoryFormatError        format version this library cannot read
    │   ├── RepositoryDatabaseMissingError  repo.db gone while the runs' files remain
    │   ├── RepositoryWriteError         disk full, read-only repository, ...
    │   └── NetworkFilesystemError       writing a repository on NFS, Lustre, ... refused
    ├── RunError
    │   ├── MissingRunError (KeyError)   no run with that hash
    │   ├── RunLockedError               another live process writes the run
    │   └── ReadOnlyRunError             write attempted on a read-only run
    ├── InputError (TypeError, ValueError)      bad arguments to the SDK
    │   ├── TrackInputError                      ... to track()
    │   └── ParamsInputError                     ... to run[key] = value and run props
    ├── QueryError                       (see aim.ql for its subclasses)
    └── RemoteError                      talking to an `aim server` (aim:// repositories)
        ├── RemoteConnectionError        the server cannot be reached
        └── RemoteAuthError              the server refused the token (or none was given)

Errors keep structured details (``run_hash``, ``path``, ``pid``) as attributes, and
their message says what to do next.
"""
from __future__ import annotations


class AimError(Exception):
    """Base class of every error raised by aimkit."""


class RepositoryError(AimError):
    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class RepositoryNotFoundError(RepositoryError):
    pass


class RepositoryFormatError(RepositoryError):
    pass


class RepositoryWriteError(RepositoryError):
    pass


class NetworkFilesystemError(RepositoryError):
    """A repository on a network or cluster file system (``fstype``: 'nfs4', 'lustre',
    ...; mounted at ``mount_point``) opened for writing: SQLite's WAL mode and the
    repository's file locks are not safe across machines (docs/network-filesystems.md)."""

    def __init__(self, message: str, path: str | None = None, fstype: str | None = None,
                 mount_point: str | None = None):
        super().__init__(message, path)
        self.fstype = fstype
        self.mount_point = mount_point


class RepositoryDatabaseMissingError(RepositoryError):
    """The repository database is missing or empty while its runs' journals and locks
    remain; ``path`` is the database file."""


class RunError(AimError):
    def __init__(self, message: str, run_hash: str | None = None):
        super().__init__(message)
        self.run_hash = run_hash


class MissingRunError(RunError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ''


class RunLockedError(RunError):
    def __init__(self, message: str, run_hash: str | None = None, pid: int | None = None):
        super().__init__(message, run_hash)
        self.pid = pid


class ReadOnlyRunError(RunError):
    pass


class InputError(AimError, TypeError, ValueError):
    """Bad arguments to the SDK: the message names the argument and what it may hold
    (docs/signals-and-limits.md). It is both a TypeError and a ValueError, so code
    written for either (Aim raises ValueError for most of these) catches it. Nothing
    stored before the call is changed."""


class TrackInputError(InputError):
    """Bad arguments to ``run.track()``."""


class ParamsInputError(InputError):
    """A bad key or value for ``run[key] = value``, or a bad run name, description,
    experiment or tag."""


class QueryError(AimError):
    """Base of query errors; subclasses live in :mod:`aim.ql`."""

    def __init__(self, message: str, position: int | None = None, hint: str | None = None,
                 query: str | None = None):
        super().__init__(message)
        self.position = position
        self.hint = hint
        self.query = query


class RemoteError(AimError):
    """A request to an ``aim server`` failed; ``url`` is the server's address."""

    def __init__(self, message: str, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class RemoteConnectionError(RemoteError):
    pass


class RemoteAuthError(RemoteError):
    pass
