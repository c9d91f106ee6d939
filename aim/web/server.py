"""Start the UI server: bind first (so ``--port 0`` can report the port it got), print the
URL, then hand the socket to uvicorn."""
from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading

import uvicorn

from aim.web.app import create_app
from aim.web.query_pool import DEFAULT_TIMEOUT_S, DEFAULT_WORKERS, QueryWorkers
from aim.web.series_payload import warm_runs_info


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f'Cannot listen on {host}:{port} ({e.strerror}). Pick another port with '
                      f'--port, or --port 0 for any free one.') from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]', '::1']


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine reaches (a name other than
    localhost may resolve to anything, so it is not)."""
    if host.lower() == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host.strip('[]')).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(host: str) -> list[str] | None:
    """Host header names a server bound to ``host`` answers: the loopback names when it
    listens on loopback only; anything when the user chose a wider address."""
    if is_loopback(host):
        return LOOPBACK_NAMES + ([host] if host not in LOOPBACK_NAMES else [])
    return None


def serve(repo, host: str = '127.0.0.1', port: int = 43800, read_only: bool = False,
          log_level: str = 'warning', ssl_keyfile: str | None = None,
          ssl_certfile: str | None = None, uds: str | None = None,
          query_timeout_s: float = DEFAULT_TIMEOUT_S,
          query_workers: int = DEFAULT_WORKERS, auth_token: str | None = None,
          artifact_roots: list[str] | None = None) -> None:
    """Serve ``repo`` until SIGTERM / SIGINT; ``auth_token``: every request must carry it
    (see :mod:`aim.web.security`)."""
    queries = QueryWorkers(repo.root_path, size=query_workers, timeout_s=query_timeout_s)
    map_repository_reads(repo)

    scheme = 'https' if ssl_certfile else 'http'
    if uds:
        sock = bind_unix_socket(uds)
        url = f'{scheme}+unix://{uds}/'
        allowed = None  # reached through a local proxy, under whatever name it uses
    else:
        sock = bind_socket(host, port)
        actual_port = sock.getsockname()[1]
        shown_host = f'[{host}]' if ':' in host else host
        url = f'{scheme}://{shown_host}:{actual_port}/'
        allowed = allowed_hosts_for(host)
    print(f'Aim UI is running at {url}' + (' (read-only)' if read_only else ''), flush=True)
    print(f'Repository: {repo.path}. Stop the UI with Ctrl-C.', flush=True)
    if auth_token:
        print(f'Access token required: open {url}?token=<the token in the --token-file> once '
              f'in the browser; scripts send "Authorization: Bearer <token>".', flush=True)
    print(f'API documentation: {url}docs', flush=True)
    sys.stdout.flush()
    app = create_app(repo, read_only=read_only, allowed_hosts=allowed, queries=queries,
                     auth_token=auth_token, artifact_roots=artifact_roots)
    if keep_freed_memory():
        threading.Thread(target=prefault_heap, name='aim-prefault', daemon=True).start()
    app.state.params_summary.warm_in_background()
    warm_runs_info(repo)
    threading.Thread(target=queries.warm, name='aim-query-warm', daemon=True).start()
    # A request still running at shutdown gets this long before the server exits anyway.
    config = uvicorn.Config(app, log_level=log_level, access_log=False,
                            ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    server = StoppingServer(config, on_exit=queries.close)
    try:
        server.run(sockets=[sock])
    finally:
        queries.close()


GRACEFUL_SHUTDOWN_S = 2


class StoppingServer(uvicorn.Server):
    """uvicorn's server that also stops running queries on SIGTERM / SIGINT: the requests
    waiting on them answer at once instead of holding the shutdown."""

    def __init__(self, config, on_exit):
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig, frame) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)


MAP_ENV = 'AIM_UI_MMAP'
MAP_BYTES = 1 << 31


def map_repository_reads(repo) -> bool:
    """Let the server read a SQLite repository on a local disk through a memory map
    (``Database.map_reads``): the first smoothed chart of a thousand long series reads
    all their points, and a ``pread`` system call per page cost it as much CPU time as
    smoothing them. Left off on network file systems, for PostgreSQL, and when
    ``AIM_UI_MMAP=0``. Returns whether reads are mapped."""
    db = repo.index
    if getattr(db, 'dialect', None) != 'sqlite' or os.environ.get(MAP_ENV, '1') == '0':
        return False
    from aim.storage.netfs import network_filesystem
    if network_filesystem(db.path):
        return False
    db.map_reads(MAP_BYTES)
    return True


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep the memory of one answer for the next one.

    A chart of a thousand series builds arrays of tens of megabytes. By default glibc
    maps each such array from the kernel and hands it back when it is freed, so every
    answer faults its pages in afresh, which costs as much as computing the answer on a
    virtual machine. With these settings arrays below 64 MB come from the heap, up to
    512 MB of freed heap stay with the process, and every thread allocates from the same
    heap (the request threads reuse what another freed). Returns whether the settings
    were applied; other C libraries are left alone."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    return bool(mallopt(m_mmap_threshold, 64 << 20)) and \
        bool(mallopt(m_trim_threshold, 512 << 20)) and bool(mallopt(m_arena_max, 1))


def prefault_heap(megabytes: int = 192) -> None:
    """Fault in ``megabytes`` of heap and free it (kept after ``keep_freed_memory``), so the
    first answers reuse pages the process already has: ``aim up`` does it in the background
    as it starts (0.05 to 0.5 s on a virtual machine; the server then holds about 250 MB).
    Machines with less than 4 GiB of memory are left alone."""
    try:
        physical = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError, AttributeError):
        physical = 0
    if physical < 4 << 30:  # a small machine (or unknown): leave its memory alone
        return
    import numpy as np
    pieces = [np.ones((24 << 20) // 8) for _ in range(max(1, megabytes // 24))]
    del pieces


def bind_unix_socket(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if os.path.exists(path):
            os.unlink(path)  # a socket file left by an earlier server
        sock.bind(path)
    except OSError as e:
        sock.close()
        raise OSError(f'Cannot listen on the unix socket {path} ({e.strerror}). Pick another '
                      f'path with --uds.') from None
    sock.listen(128)
    return sock
