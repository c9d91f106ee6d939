"""``aim sync``: ship spooled runs (offline runs, or streams a dead client left) to a server
or into a local repository."""
from __future__ import annotations

import os
import signal
import time

import click


@click.command('sync')
@click.argument('spool', required=False, type=click.Path(file_okay=False))
@click.option('--repo', 'repo', default=None,
              help='Where to ship: aim://HOST:PORT (a server) or a repository directory. '
                   'Default: the server each run was started with.')
@click.option('--watch', is_flag=True,
              help='Keep syncing the folder (also runs still tracking offline) until stopped '
                   'with Ctrl-C or SIGTERM.')
@click.option('--interval', default=2.0, show_default=True, type=click.FloatRange(min=0.1),
              help='Seconds between two passes with --watch.')
def sync(spool, repo, watch, interval):
    """Ship the runs in SPOOL (default: AIM_SPOOL_DIR, else ~/.cache/aim/spool).

    Each point is applied once, however often a stream is synced; a stream is deleted from
    the spool once its run is complete on the other side. A run whose writer is still alive
    is left alone, except with --watch (what it wrote so far is shipped, nothing deleted)."""
    from aim.remote.spool import list_streams, read_meta, spool_root
    root = os.path.abspath(spool or spool_root())
    if os.path.exists(os.path.join(root, 'meta.json')):
        streams_of = lambda: [root] if os.path.isdir(root) else []  # noqa: E731 (one stream)
    else:
        if not os.path.isdir(root):
            raise click.ClickException(f'{root} is not a spool folder (it does not exist).')
        streams_of = lambda: list_streams(root)  # noqa: E731
    targets: dict[str, object] = {}
    stop = {'now': False}

    def on_signal(signum, frame):
        stop['now'] = True

    if watch:
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    failed = False
    while True:
        for stream_dir in streams_of():
            meta = read_meta(stream_dir)
            if meta is None:
                click.echo(f'{stream_dir}: not a spool stream (no readable meta.json); left '
                           f'alone.', err=True)
                continue
            where = repo or meta.get('url')
            if not where:
                click.echo(f'{stream_dir}: no server recorded; pass --repo.', err=True)
                failed = True
                continue
            try:
                target = targets.get(where) or _target(where)
                targets[where] = target
                result = _ship(stream_dir, target, watch)
            except click.ClickException:
                raise
            except Exception as e:
                failed = True
                click.echo(f'run {meta["run"]}: could not ship to {where}: {e}', err=True)
                continue
            if result.skipped and not watch:
                click.echo(f'run {meta["run"]}: left in the spool ({result.skipped}).')
            elif result.points or result.done or not watch:
                state = 'complete, removed from the spool' if result.done else \
                    'kept in the spool (its writer is still tracking)' if result.skipped or watch \
                    else 'kept in the spool'
                click.echo(f'run {meta["run"]}: {result.points:,} points shipped to {where}; '
                           f'{state}.')
        if not watch or stop['now']:
            break
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not stop['now']:
            time.sleep(min(0.1, interval))
        if stop['now']:
            break
    if failed:
        raise SystemExit(1)


def _target(where: str):
    from aim.remote.spool import HttpTarget, LocalTarget
    from aim.sdk.repo import Repo, is_remote
    if is_remote(where):
        repo = Repo.from_path(where)
        repo._store.client.hello()
        return HttpTarget(repo._store.client)
    from aim.storage.postgres import is_database_url
    if is_database_url(where):
        return LocalTarget(Repo.from_path(where)._store)
    if not os.path.isdir(os.path.join(where, '.aim')):
        raise click.ClickException(f'{where} holds no .aim repository. Create one with '
                                   f'`aim init --repo {where}`, or pass --repo aim://HOST:PORT.')
    return LocalTarget(Repo.from_path(where)._store)


def _ship(stream_dir: str, target, watch: bool):
    from aim.remote.spool import ship_stream
    return ship_stream(stream_dir, target, live=watch)
