"""A throwaway PostgreSQL cluster for the tests and benchmarks: Debian's ``postgresql``
binaries, ``initdb`` + ``pg_ctl`` into a temporary folder, as an unprivileged user (root
cannot run the server), on a free loopback port.

    with PgCluster() as pg:
        url = pg.create_database('aim_test')      # postgresql://aim@127.0.0.1:PORT/aim_test
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

USER = 'aim'          # the database role the tests connect as (trust auth on loopback)


def pg_bindir() -> str | None:
    """The folder with initdb/pg_ctl/postgres: Debian keeps them out of PATH."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/pg_ctl'),
                   key=lambda p: int(p.split('/')[4]) if p.split('/')[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which('pg_ctl')
    return os.path.dirname(pg_ctl) if pg_ctl else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when this process is root (nobody), else None."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam('nobody')
    return entry.pw_uid, entry.pw_gid


class PgCluster:
    def __init__(self, bindir: str | None = None):
        self.bindir = bindir or pg_bindir()
        if self.bindir is None:
            raise RuntimeError('PostgreSQL is not installed: `apt-get install postgresql` '
                               '(scripts/test.sh does it)')
        self.dir = tempfile.mkdtemp(prefix='aim-pg-')
        self.data = os.path.join(self.dir, 'data')
        self.port = free_port()
        self.host = '127.0.0.1'
        self._ids = _run_as()

    def _cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self._ids is not None:
            uid, gid = self._ids
            kwargs['preexec_fn'] = lambda: (os.setgid(gid), os.setuid(uid))
        return subprocess.run([os.path.join(self.bindir, args[0]), *args[1:]], check=check,
                              capture_output=True, text=True, cwd=self.dir,
                              env=dict(os.environ, LC_ALL='C', LANG='C'), **kwargs)

    def start(self) -> PgCluster:
        os.chmod(self.dir, 0o755)
        if self._ids is not None:
            os.chown(self.dir, *self._ids)
        self._cmd('initdb', '-D', self.data, '-U', USER, '-A', 'trust', '-E', 'UTF8',
                  '--locale=C', '--no-sync')
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                    f"synchronous_commit = off\nfull_page_writes = off\n"
                    f"max_connections = 200\nshared_buffers = 128MB\n")
        self.pg_ctl_start()
        return self

    def pg_ctl_start(self) -> None:
        self._cmd('pg_ctl', '-D', self.data, '-l', os.path.join(self.dir, 'log'), '-w',
                  '-t', '60', 'start')

    def stop(self, mode: str = 'fast') -> None:
        self._cmd('pg_ctl', '-D', self.data, '-m', mode, '-w', 'stop', check=False)

    def restart(self) -> None:
        self.stop()
        self.pg_ctl_start()

    def url(self, database: str = 'postgres') -> str:
        return f'postgresql://{USER}@{self.host}:{self.port}/{database}'

    def create_database(self, name: str) -> str:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def cleanup(self) -> None:
        self.stop('immediate')
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


def create_database_from_template(cluster: PgCluster, name: str) -> str:
    """A new database ``name`` (dropped first if it exists) copied from the cluster's
    template of aimkit tables (tests/conftest.py: ``pg_cluster``); its URL."""
    import psycopg
    cluster.drop_database(name)
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{cluster.template}"')
    return cluster.url(name)


def wait_ready(url: str, timeout_s: float = 30.0) -> None:
    import psycopg
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
