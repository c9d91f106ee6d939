"""``aim runs``: list, delete, copy, move and close runs of a repository."""
from __future__ import annotations

import datetime as dt
import fnmatch
import os
import sys

import click

from aim.errors import AimError
from aim.storage.postgres import redact

_WILDCARD_CHARS = '*?['


def _repo_option(func):
    return click.option('--repo', default=None, type=click.Path(file_okay=False),
                        help='Repository directory (default: the one given to `aim runs`, '
                             'else the current directory).')(func)


def _yes_option(func):
    return click.option('-y', '--yes', is_flag=True,
                        help='Do not ask for confirmation.')(func)


@click.group()
@click.option('--repo', default='.', type=click.Path(file_okay=False),
              help='Repository directory (default: current directory).')
@click.pass_context
def runs(ctx, repo):
    """List, delete, copy, move and close runs. HASHES accept shell wildcards ('3fa*')."""
    ctx.ensure_object(dict)
    ctx.obj['runs_repo'] = repo


def open_repo(ctx: click.Context, repo: str | None):
    from aim.sdk.repo import Repo

    path = repo if repo is not None else (ctx.obj or {}).get('runs_repo', '.')
    if not Repo.exists(path):
        raise click.ClickException(f'No aim repository at {os.path.abspath(path)}. Pass '
                                   f'--repo DIR, or run `aim init --repo {path}` first.')
    try:
        return Repo.from_path(path)
    except AimError as exc:
        raise click.ClickException(str(exc)) from None


def expand_hashes(patterns: tuple[str, ...], known: list[str]) -> list[str]:
    """Run hashes matching ``patterns`` (exact hashes or shell wildcards), in order."""
    if not patterns:
        raise click.UsageError('Give at least one run hash or pattern, e.g. `3fa*` or `*`.')
    known_set = set(known)
    matched: list[str] = []
    unmatched = []
    for pattern in patterns:
        if any(c in pattern for c in _WILDCARD_CHARS):
            hits = fnmatch.filter(known, pattern)
        else:
            hits = [pattern] if pattern in known_set else []
        if not hits:
            unmatched.append(pattern)
        matched.extend(h for h in hits if h not in matched)
    if unmatched:
        raise click.ClickException(
            f'No run matches {", ".join(map(repr, unmatched))}. See `aim runs ls` for the '
            f'hashes in this repository.')
    return matched


def _confirm(action: str, hashes: list[str], yes: bool) -> None:
    if yes:
        return
    shown = ', '.join(hashes[:10]) + (f' and {len(hashes) - 10} more' if len(hashes) > 10 else '')
    click.confirm(f'{action} {len(hashes)} run(s): {shown}?', abort=True)


def _for_each(hashes: list[str], label: str, work) -> dict[str, str]:
    """Run ``work(hash)`` under a progress bar; returns ``{hash: error}`` for failures."""
    failures: dict[str, str] = {}
    with click.progressbar(hashes, label=label, file=sys.stderr) as bar:
        for run_hash in bar:
            try:
                work(run_hash)
            except AimError as exc:
                failures[run_hash] = str(exc)
    return failures


def _finish(done_message: str, hashes: list[str], failures: dict[str, str]) -> None:
    ok = len(hashes) - len(failures)
    click.echo(done_message.format(n=ok))
    if failures:
        for run_hash, error in failures.items():
            click.echo(f'  {run_hash}: {error}', err=True)
        raise click.ClickException(f'{len(failures)} run(s) were left as they were (see above).')


@runs.command('ls')
@_repo_option
@click.pass_context
def list_runs(ctx, repo):
    """List runs: hash, name, experiment, creation time, active."""
    r = open_repo(ctx, repo)
    rows = []
    for run in r.iter_runs():
        created = run.creation_time
        rows.append((run.hash, run.name or '', run.experiment or '',
                     _local_time(created) if created else '', 'yes' if run.active else 'no'))
    indexed = {row[0] for row in rows}
    unindexed = [h for h in r.list_all_runs() if h not in indexed]
    for run_hash in unindexed:
        rows.append((run_hash, '(not in the index: run `aim storage check`)', '', '', '?'))
    click.echo(format_table(('HASH', 'NAME', 'EXPERIMENT', 'CREATED', 'ACTIVE'), rows))
    click.echo(f'Total {len(rows)} runs.')


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]],
                 max_width: int = 40) -> str:
    cells = [tuple(_clip(str(c), max_width) for c in row) for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return '\n'.join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + '…'


def _local_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime('%Y-%m-%d %H:%M:%S')


@runs.command('rm')
@click.argument('hashes', nargs=-1)
@_repo_option
@_yes_option
@click.pass_context
def remove_runs(ctx, hashes, repo, yes):
    """Delete runs and free their disk space."""
    r = open_repo(ctx, repo)
    matched = expand_hashes(hashes, r.list_all_runs())
    _confirm('Delete', matched, yes)

    def delete(run_hash):
        if not r.delete_run(run_hash):
            raise AimError(f'run {run_hash} no longer exists')

    failures = _for_each(matched, 'Deleting runs', delete)
    _finish('Deleted {n} run(s).', matched, failures)


def _destination(path: str):
    from aim.sdk.repo import Repo

    if not Repo.exists(path):
        raise click.ClickException(f'No aim repository at {os.path.abspath(path)}. Create it '
                                   f'with `aim init --repo {path}` first.')
    return Repo.from_path(path)


def _transfer(r, matched: list[str], dest, label: str, move: bool) -> dict[str, str]:
    if os.path.realpath(dest.path) == os.path.realpath(r.path):
        raise click.ClickException('The destination is the source repository; give another '
                                   '--destination.')

    def transfer(run_hash):
        method = r.move_runs if move else r.copy_runs
        ok, remaining = method([run_hash], dest)
        if not ok:
            raise AimError(_transfer_failure_reason(r, dest, run_hash))

    return _for_each(matched, label, transfer)


def _transfer_failure_reason(r, dest, run_hash: str) -> str:
    if dest.run_exists(run_hash):
        return f'already exists in {redact(dest.root_path)}'
    if run_hash in r.list_active_runs():
        return 'is being written by a live process; try again once it has finished'
    return 'could not be read or written; `aim storage check` tells whether it is damaged'


@runs.command('cp')
@click.argument('hashes', nargs=-1)
@click.option('--destination', required=True, type=click.Path(file_okay=False),
              help='Repository to copy the runs into.')
@_repo_option
@click.pass_context
def copy_runs(ctx, hashes, destination, repo):
    """Copy runs into another repository."""
    r = open_repo(ctx, repo)
    matched = expand_hashes(hashes, r.list_all_runs())
    dest = _destination(destination)
    failures = _transfer(r, matched, dest, 'Copying runs', move=False)
    _finish(f'Copied {{n}} run(s) to {redact(dest.root_path)}.', matched, failures)


@runs.command('mv')
@click.argument('hashes', nargs=-1)
@click.option('--destination', required=True, type=click.Path(file_okay=False),
              help='Repository to move the runs into.')
@_repo_option
@_yes_option
@click.pass_context
def move_runs(ctx, hashes, destination, repo, yes):
    """Move runs into another repository (copy, then delete here)."""
    r = open_repo(ctx, repo)
    matched = expand_hashes(hashes, r.list_all_runs())
    dest = _destination(destination)
    _confirm(f'Move to {redact(dest.root_path)}', matched, yes)
    failures = _transfer(r, matched, dest, 'Moving runs', move=True)
    _finish(f'Moved {{n}} run(s) to {redact(dest.root_path)}.', matched, failures)


@runs.command('close')
@click.argument('hashes', nargs=-1)
@_repo_option
@_yes_option
@click.pass_context
def close_runs(ctx, hashes, repo, yes):
    """Mark crashed runs finished (end time = last sign of life)."""
    from aim.storage.maintenance import close_dead_run

    r = open_repo(ctx, repo)
    matched = expand_hashes(hashes, r.list_all_runs())
    _confirm('Close', matched, yes)
    store = _store_of(r)
    closed = []

    def close(run_hash):
        if close_dead_run(store, run_hash):
            closed.append(run_hash)

    try:
        failures = _for_each(matched, 'Closing runs', close)
    finally:
        store.close()
    already = len(matched) - len(closed) - len(failures)
    note = f' ({already} were already finished)' if already else ''
    _finish(f'Closed {len(closed)} run(s){note}.', matched, failures)


def _store_of(repo):
    """The storage of an open Repo, for the maintenance functions of ``aim.storage``
    (a store of its own, closed by the caller)."""
    from aim.sdk.repo import is_database
    if is_database(repo.root_path):
        from aim.storage.pg_repository import PgRepoStore
        return PgRepoStore(repo.root_path)
    from aim.storage.repository import RepoStore

    return RepoStore(repo.root_path)


@runs.command('export')
@click.argument('hashes', nargs=-1)
@click.option('--format', 'fmt', type=click.Choice(['parquet', 'csv', 'jsonl']),
              default='parquet', show_default=True,
              help='File format of the points (Parquet needs pyarrow).')
@click.option('--output', required=True, type=click.Path(file_okay=False),
              help='Folder to write runs.jsonl and metrics.<format> into (created if missing).')
@click.option('--query', '-q', default=None,
              help="Export the series matching this metric query instead of HASHES "
                   "(e.g. \"metric.name == 'loss'\").")
@_repo_option
@click.pass_context
def export_runs(ctx, hashes, fmt, output, query, repo):
    """Export runs (their props, params and every point) to files; see docs/export.md.
    `aim runs import` reads them back."""
    from aim.sdk.export import export_metrics
    from aim.sdk.export import export_runs as export_hashes

    r = open_repo(ctx, repo)
    try:
        if query is not None:
            if hashes:
                raise click.UsageError('Give HASHES or --query, not both.')
            report = export_metrics(
                ((item.run, list(item)) for item in r.query_metrics(query).iter_runs()),
                output, fmt)
        else:
            matched = expand_hashes(hashes, r.list_all_runs())
            report = export_hashes(r, matched, output, fmt)
    except AimError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f'Exported {report.runs} run(s), {report.series} series, {report.points:,} '
               f'points to {report.output} ({fmt}).')


@runs.command('import')
@click.argument('folder', type=click.Path(exists=True, file_okay=False))
@_repo_option
@click.pass_context
def import_runs(ctx, folder, repo):
    """Import runs written by `aim runs export` (runs already here are left alone)."""
    from aim.converters.exported import import_export
    from aim.sdk.repo import Repo

    path = repo if repo is not None else (ctx.obj or {}).get('runs_repo', '.')
    try:
        r = Repo.from_path(path, init=not Repo.exists(path))
        report = import_export(r, folder)
    except AimError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f'Imported {len(report.converted)} run(s) ({report.points:,} points); '
               f'{len(report.unchanged)} were already in {redact(r.root_path)}.')
