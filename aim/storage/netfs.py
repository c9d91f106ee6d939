"""Network and cluster file systems (NFS, Lustre, GPFS, CIFS, ...) under a repository.

SQLite's WAL mode keeps its readers' and writer's positions in a memory-mapped ``-shm``
file and guards it with POSIX locks; the run locks under ``.aim/locks`` are POSIX record
locks too. Neither works across machines sharing a network file system: two nodes writing
one repository can corrupt ``repo.db`` or wait forever on a lock. So a repository on such
a file system is refused for writing and read with a warning (docs/network-filesystems.md).

Linux only: the file system is found in ``/proc/self/mountinfo``. Anywhere that file cannot
be read, every path counts as local.
"""
from __future__ import annotations

import os
import re
import warnings
from typing import NamedTuple

# Types as /proc/self/mountinfo names them (a FUSE file system shows as fuse.<name>).
NETWORK_FS_TYPES: tuple[str, ...] = (
    'nfs', 'nfs4',
    'lustre', 'gpfs', 'beegfs', 'panfs', 'wekafs', 'pvfs2', 'orangefs',
    'cifs', 'smb3', 'smbfs',
    'ceph', 'fuse.ceph', 'fuse.ceph-fuse',
    'glusterfs', 'fuse.glusterfs',
    'ocfs2', 'gfs2',
    'afs', '9p',
    'sshfs', 'fuse.sshfs',
    'fuse.s3fs', 'fuse.gcsfuse', 'fuse.juicefs', 'fuse.rclone',
    'davfs', 'fuse.davfs',
)

ALLOW_ENV = 'AIM_ALLOW_NETWORK_FS'
# Test-only: a file read instead of /proc/self/mountinfo (like AIM_TEST_FAULT_POINT, no
# user should set it).
TEST_MOUNTINFO_ENV = 'AIM_TEST_MOUNTINFO'
MOUNTINFO = '/proc/self/mountinfo'


class Mount(NamedTuple):
    mount_point: str
    fstype: str


def _unescape(field: bytes) -> str:
    # the kernel writes space, tab, newline and backslash in paths as \ooo octal escapes
    raw = re.sub(rb'\\([0-7]{3})', lambda m: bytes([int(m.group(1), 8) & 0xFF]), field)
    return os.fsdecode(raw)


def parse_mountinfo(text: bytes) -> list[Mount]:
    """The mounts of a mountinfo file, in its order (a later mount on the same point hides
    an earlier one). Lines that do not parse are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        # ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
        try:
            sep = fields.index(b'-', 6)
        except ValueError:
            continue
        if sep + 1 >= len(fields):
            continue
        mounts.append(Mount(_unescape(fields[4]), os.fsdecode(fields[sep + 1])))
    return mounts


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount holding ``path`` (absolute, resolved): the longest mount point that is a
    prefix of it, the last listed one among equals."""
    best: Mount | None = None
    for m in mounts:
        point = m.mount_point
        inside = path == point or point == '/' or path.startswith(point.rstrip('/') + '/')
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = m
    return best


_table: tuple[int, str, list[Mount]] | None = None  # (pid, source, mounts)


def _mounts() -> list[Mount]:
    """This process' mount table, read once per process (a forked child reads it again:
    its parent's copy would do, but re-reading costs one small file)."""
    global _table
    source = os.environ.get(TEST_MOUNTINFO_ENV) or MOUNTINFO
    pid = os.getpid()
    if _table is not None and _table[0] == pid and _table[1] == source:
        return _table[2]
    try:
        with open(source, 'rb') as f:
            mounts = parse_mountinfo(f.read())
    except (OSError, ValueError):
        mounts = []  # not Linux, no /proc, unreadable: count everything as local
    _table = (pid, source, mounts)
    return mounts


def _existing(path: str) -> str:
    """``path`` resolved, or its nearest existing parent when it does not exist yet."""
    path = os.path.realpath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def network_mount(path: str) -> Mount | None:
    """The mount holding ``path`` when it is a network or cluster file system, else None."""
    try:
        m = mount_of(_existing(path), _mounts())
    except (OSError, ValueError):
        return None
    return m if m is not None and m.fstype in NETWORK_FS_TYPES else None


def network_filesystem(path: str) -> str | None:
    """The file-system type ('nfs4', 'lustre', ...) when ``path`` lives on a network or
    cluster file system, else None. Never raises."""
    m = network_mount(path)
    return m.fstype if m is not None else None


def network_fs_allowed() -> bool:
    """True when the user has set AIM_ALLOW_NETWORK_FS=1: only safe when one machine alone
    ever opens the repository."""
    return os.environ.get(ALLOW_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


_warned: tuple[int, set[str]] = (0, set())  # (pid, repository roots warned about)


def check_repository_filesystem(root: str, aim_dir: str, readonly: bool) -> None:
    """Refuse to write a repository on a network file system; warn once per path and
    process when reading one. Nothing happens on a local disk or with AIM_ALLOW_NETWORK_FS."""
    global _warned
    m = network_mount(aim_dir)
    if m is None or network_fs_allowed():
        return
    # an existing repository this user cannot write is opened read-only anyway
    writing = not readonly and (not os.path.isdir(aim_dir) or os.access(aim_dir, os.W_OK))
    if writing:
        from aim.errors import NetworkFilesystemError
        raise NetworkFilesystemError(
            f'The aim repository at {root} is on a network file system ({m.fstype}, mounted '
            f'at {m.mount_point}); aimkit does not write there: SQLite\'s WAL mode and the '
            f'file locks of the repository are not safe across machines, and processes on '
            f'two nodes could corrupt it or wait forever. Instead, run `aim server --repo DIR` '
            f'on one machine that has the disk locally (DIR being the repository as that '
            f'machine sees it) and track with Run(repo=\'aim://HOST:53800\'); or track offline '
            f'runs whose spool is on the shared disk (AIM_SPOOL_DIR=/shared/spool, '
            f'Run(repo=\'aim://HOST:53800\', offline=True)) and let one process fold them with '
            f'`aim sync --watch /shared/spool --repo DIR`. If only one machine ever opens '
            f'this repository, set {ALLOW_ENV}=1. Reading it with read_only=True is allowed. '
            f'See docs/network-filesystems.md.',
            root, fstype=m.fstype, mount_point=m.mount_point)
    pid = os.getpid()
    if _warned[0] != pid:
        _warned = (pid, set())
    if root in _warned[1]:
        return
    _warned[1].add(root)
    warnings.warn(
        f'The aim repository at {root} is on a network file system ({m.fstype}); it is read '
        f'only, and reads may see stale data while another machine writes it. To read runs '
        f'as they are written, serve it with `aim server --repo DIR` from the machine that '
        f'has the disk locally. See docs/network-filesystems.md.', RuntimeWarning, stacklevel=4)
