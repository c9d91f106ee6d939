"""``aim storage check``, ``vacuum`` and ``migrate`` (the ``storage`` group is in main.py)."""
from __future__ import annotations

import os
import sys

import click

from aim.errors import AimError


def _repo_root(repo: str | None) -> str:
    if repo is None:  # the storage group's --repo, else the current directory
        repo = (click.get_current_context().obj or {}).get('storage_repo') or '.'
    from aim.sdk.repo import is_database
    if is_database(repo):
        return repo
    root = os.path.abspath(repo)
    if os.path.basename(root) == '.aim':
        root = os.path.dirname(root)
    if not os.path.isdir(os.path.join(root, '.aim')):
        raise click.ClickException(f'No aim repository at {root}. Pass --repo DIR, or run '
                                   f'`aim init --repo {repo}` first.')
    return root


def _progress(length: int, label: str):
    return click.progressbar(length=length, label=label, file=sys.stderr)


@click.command('check')
@click.option('--repo', default=None, type=click.Path(file_okay=False),
              help='Repository directory (default: current directory).')
@click.option('--quick', is_flag=True,
              help='Check the files\' structure only, without decoding every series.')
def check(repo, quick):
    """Verify every run; report damaged runs (exit status 1 if any)."""
    from aim.storage.maintenance import check_repository, count_runs

    root = _repo_root(repo)
    from aim.sdk.repo import is_database
    if is_database(root):
        from aim.storage.migrate import check_database_repository
        from aim.storage.postgres import redact
        store = _open_store(root)
        try:
            with _progress(len(store.list_run_hashes()), 'Checking runs') as bar:
                report = check_database_repository(store, thorough=not quick,
                                                   progress=lambda h: bar.update(1))
        finally:
            store.close()
        root = redact(root)
    else:
        with _progress(count_runs(root), 'Checking runs') as bar:
            report = check_repository(root, thorough=not quick,
                                      progress=lambda h: bar.update(1))
    for damaged in report.damaged:
        click.echo(f'DAMAGED {damaged.run_hash}: {"; ".join(damaged.problems)}')
    for note in report.notes:
        click.echo(f'NOTE    {note}')
    for problem in report.repository_problems:
        click.echo(f'REPO    {problem}')
    checked = len(report.runs)
    if report.ok:
        click.echo(f'All {checked} runs are intact.')
        return
    intact = checked - len(report.damaged)
    if report.unreadable:
        click.echo(f'The repository at {root} cannot be opened, so no run could be read; '
                   f'see the REPO lines above.', err=True)
    elif report.shared_database_damaged:
        click.echo(f'{len(report.damaged)} of {checked} runs cannot be read completely and the '
                   f'repository database itself is damaged. Copy the runs into a new '
                   f'repository with `aim runs --repo {root} cp "*" --destination NEW` '
                   f'(runs that no longer read are listed and left out), then use NEW.',
                   err=True)
    elif report.damaged:
        hashes = ' '.join(r.run_hash for r in report.damaged)
        click.echo(f'{len(report.damaged)} of {checked} runs are damaged; the other {intact} '
                   f'read correctly. Each DAMAGED line says what is lost and what brings '
                   f'back what can be; then copy what you need from runs that still do not '
                   f'read, and remove them with `aim runs --repo {root} rm {hashes}`.',
                   err=True)
    else:
        click.echo(f'The {checked} runs in the database read correctly, but the repository '
                   f'has the problems listed above (REPO); each says what to do.', err=True)
    raise SystemExit(1)


@click.command('vacuum')
@click.option('--repo', default=None, type=click.Path(file_okay=False),
              help='Repository directory (default: current directory).')
@click.option('--full', is_flag=True,
              help='Also rewrite the database file so that each table is stored in one '
                   'piece: charts read from a cold disk faster. Holds the database for the '
                   'whole rewrite, so run it when no run is being written.')
def vacuum(repo, full):
    """Reclaim disk space: compact the repository database."""
    from aim.storage.maintenance import vacuum_repository
    from aim.storage.repository import RepoStore

    root = _repo_root(repo)
    try:
        store = _open_store(root) if '://' in root else RepoStore(root)
    except AimError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        click.echo('Rewriting the repository ...' if full else 'Compacting the repository ...',
                   err=True)
        if getattr(store, 'backend', 'sqlite') == 'postgresql':
            from aim.storage.migrate import vacuum_database_repository
            report = vacuum_database_repository(store, full=full)
        else:
            report = vacuum_repository(store, full=full)
    finally:
        store.close()
    what = 'tables' if '://' in root else 'database file(s)'
    click.echo(f'Compacted {len(report.compacted)} {what}; freed '
               f'{_human_bytes(report.bytes_freed)} ({_human_bytes(report.bytes_before)} -> '
               f'{_human_bytes(report.bytes_after)}).')
    for name, error in report.failed.items():
        click.echo(f'FAILED  {name}: {error}', err=True)
    if report.failed:
        raise SystemExit(1)


def _open_store(where: str, create: bool = False):
    """The store of a repository directory or a postgresql:// URL."""
    from aim.sdk.repo import is_database
    try:
        if is_database(where):
            from aim.storage.pg_repository import PgRepoStore
            return PgRepoStore(where, create=create)
        from aim.storage.repository import RepoStore
        return RepoStore(_repo_root(where) if not create else where, create=create)
    except AimError as exc:
        raise click.ClickException(str(exc)) from None


@click.command('migrate')
@click.argument('src')
@click.argument('dst')
def migrate(src, dst):
    """Copy every run of the repository SRC into DST (each a directory or a
    postgresql://user@host:port/db URL; DST is created if needed). Resumable: runs already
    in DST are checked and skipped. Verifies runs, series and point counts at the end."""
    from aim.storage.migrate import migrate as migrate_runs
    from aim.storage.postgres import redact
    source = _open_store(src)
    if '://' not in dst:
        os.makedirs(dst, exist_ok=True)
    dest = _open_store(dst, create=True)
    try:
        hashes = source.list_run_hashes()
        with _progress(len(hashes), 'Migrating runs') as bar:
            report = migrate_runs(source, dest, progress=lambda h: bar.update(1))
    except AimError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        source.close()
        dest.close()
    click.echo(f'Copied {len(report.copied)} runs from {redact(src)} to {redact(dst)}; '
               f'{len(report.already_there)} were already there.' +
               (f' Copied {report.blobs_copied} blobs.' if report.blobs_copied else ''))
    for line in report.meta:   # the UI's settings: saved views, tag colours
        click.echo(f'Settings {line}')
    for run_hash, why in report.skipped:
        click.echo(f'SKIPPED {run_hash}: {why}', err=True)
    for problem in report.mismatches:
        click.echo(f'MISMATCH {problem}', err=True)
    if not report.ok:
        click.echo('Run the command again once the runs above are dealt with; it copies only '
                   'what is missing.', err=True)
        raise SystemExit(1)
    click.echo(f'Verified: {len(report.copied) + len(report.already_there)} runs with the same '
               f'series and point counts on both sides.')


@click.command('blobs')
@click.option('--repo', default=None, help='Repository directory or postgresql:// URL.')
@click.option('--s3', 's3_url', default=None, metavar='s3://BUCKET/PREFIX',
              help='Keep blobs in this S3-compatible bucket from now on.')
@click.option('--endpoint-url', default=None,
              help='The S3-compatible service (MinIO, Ceph, ...); default: AWS.')
@click.option('--database', is_flag=True, help='Keep blobs in the repository database again.')
@click.option('--copy', 'copy_from', is_flag=True,
              help='Also copy the blobs the previous store holds into the new one.')
def blobs(repo, s3_url, endpoint_url, database, copy_from):
    """Where the repository keeps the bytes of images, audio and figures: show it, or
    move it (credentials for S3 come from the environment, never stored)."""
    from aim.storage.blobs import configure, copy_blobs
    if s3_url and database:
        raise click.ClickException('Give --s3 or --database, not both.')
    store = _open_store(repo or (click.get_current_context().obj or {}).get('storage_repo')
                        or '.')
    try:
        before = store.blobs
        if s3_url or database:
            after = configure(store.db, s3_url, endpoint_url)
            click.echo(f'Blobs are kept in {after.location} from now on.')
            if copy_from:
                n = copy_blobs(before, after)
                click.echo(f'Copied {n} blobs from {before.location}.')
        else:
            n = sum(1 for _ in before.digests())
            click.echo(f'Blobs are kept in {before.location} ({n} blobs).')
    except AimError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if size < 1024 or unit == 'GiB':
            return f'{size:.0f} {unit}' if unit == 'B' else f'{size:.1f} {unit}'
        size /= 1024
    return f'{n} B'
