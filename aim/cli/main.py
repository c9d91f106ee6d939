"""The ``aim`` command. Each group lives in its own module; this file wires them."""
from __future__ import annotations

import os

import click

from aim import __version__


@click.group()
@click.option('-v', '--verbose', is_flag=True, help='Show full tracebacks on errors.')
@click.pass_context
def cli(ctx, verbose):
    """aimkit: track, query and compare ML experiments."""
    ctx.ensure_object(dict)
    ctx.obj['verbose'] = verbose


@cli.command()
def version():
    """Print the aimkit version."""
    click.echo(f'Aim v{__version__} (aimkit)')


@cli.command()
@click.option('--repo', default='.', type=click.Path(file_okay=False),
              help='Directory to create the repository in (default: current directory).')
@click.option('-s', '--skip-if-exists', is_flag=True,
              help='Accepted for Aim compatibility: an existing repository is always kept.')
def init(repo, skip_if_exists):
    """Create an aim repository (.aim) in REPO; an existing one is kept."""
    from aim.sdk.repo import Repo, is_database
    if is_database(repo):
        from aim.storage.postgres import redact
        existed = Repo.exists(repo)
        Repo.from_path(repo, init=True)   # creates the tables; checks the format version
        click.echo(f'Repository already exists in {redact(repo)}; kept as it is.' if existed
                   else f'Initialized a new aim repository in {redact(repo)}')
        return
    path = os.path.abspath(repo)
    if Repo.exists(path):
        Repo.from_path(path)  # checks the format version
        click.echo(f'Repository already exists at {os.path.join(path, ".aim")}; kept as it is.')
        return
    os.makedirs(path, exist_ok=True)
    Repo.from_path(path, init=True)
    click.echo(f'Initialized a new aim repository at {os.path.join(path, ".aim")}')


@cli.group()
@click.option('--repo', default=None, type=click.Path(file_okay=False),
              help='Repository directory (default: current directory); also accepted after '
                   'the subcommand.')
@click.pass_context
def storage(ctx, repo):
    """Maintain the repository's storage."""
    ctx.ensure_object(dict)
    ctx.obj['storage_repo'] = repo


def storage_repo(repo: str | None) -> str:
    """The repository a storage subcommand works on: its own --repo, else the group's."""
    if repo is not None:
        return repo
    ctx = click.get_current_context()
    return (ctx.obj or {}).get('storage_repo') or '.'


@storage.command()
@click.option('--repo', default=None, type=click.Path(file_okay=False),
              help='Repository directory (default: current directory).')
@click.option('-y', '--yes', is_flag=True, help='Accepted for Aim compatibility (reindexing '
                                                 'changes no data, so it never asks).')
def reindex(repo, yes):
    """Rebuild the index (runs, params, series summaries) from the run data."""
    from aim.errors import AimError
    from aim.storage.reindex import reindex_repository
    from aim.storage.repository import RepoStore
    try:
        r = _open_repo(storage_repo(repo))
        if r._store.backend == 'postgresql':   # one transaction in the database
            with click.progressbar(length=len(r._store.list_run_hashes()),
                                   label='Reindexing runs') as bar:
                damaged: list = []
                n = r._store.reindex(progress=lambda h: bar.update(1), damaged=damaged)
            click.echo(f'Reindexed {n} runs in {r.path}.')
            for run_hash, what in damaged:
                click.echo(f'DAMAGED {run_hash}: {what}', err=True)
            raise SystemExit(1 if damaged else 0)
        store = RepoStore(r.root_path)
    except AimError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        hashes = store.list_run_hashes()
        with click.progressbar(length=len(hashes), label='Reindexing runs') as bar:
            report = reindex_repository(store, progress=lambda h: bar.update(1))
    except AimError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(f'Reindexed {report.reindexed} runs in {r.path}.')
    for note in report.notes:
        click.echo(f'NOTE    {note}.', err=True)
    for run_hash, what in report.restored:
        click.echo(f'RESTORED {run_hash}: {what}.', err=True)
    for run_hash, reason in report.skipped:
        click.echo(f'SKIPPED {run_hash}: {reason}. See `aim storage check`.', err=True)
    for run_hash, reason in report.damaged:
        click.echo(f'DAMAGED {run_hash}: its points cannot be read ({reason}); its props and '
                   f'params are indexed. See `aim storage check`.', err=True)
    if not report.ok:
        raise SystemExit(1)


from aim.cli.runs import runs as _runs_group  # noqa: E402
from aim.cli.storage_cmds import blobs as _storage_blobs  # noqa: E402
from aim.cli.storage_cmds import check as _storage_check  # noqa: E402
from aim.cli.storage_cmds import migrate as _storage_migrate  # noqa: E402
from aim.cli.storage_cmds import vacuum as _storage_vacuum  # noqa: E402

cli.add_command(_runs_group)
from aim.cli.up import up as _up_command  # noqa: E402

cli.add_command(_up_command)
from aim.cli.server import server as _server_command  # noqa: E402

cli.add_command(_server_command)
from aim.cli.sync import sync as _sync_command  # noqa: E402

cli.add_command(_sync_command)
from aim.cli.convert import convert as _convert_group  # noqa: E402

cli.add_command(_convert_group)
storage.add_command(_storage_check)
storage.add_command(_storage_vacuum)
storage.add_command(_storage_migrate)
storage.add_command(_storage_blobs)


def _open_repo(path: str):
    from aim.sdk.repo import Repo
    if not Repo.exists(path):
        raise click.ClickException(f'No aim repository at {os.path.abspath(path)}. '
                                   f'Run `aim init --repo {path}` first.')
    return Repo.from_path(path)


def main():
    from aim.errors import AimError
    try:
        cli(standalone_mode=True)
    except AimError as e:  # pragma: no cover - click handles most errors itself
        raise SystemExit(f'Error: {e}') from None


if __name__ == '__main__':
    main()
