"""``aim up``: serve the web UI for a repository."""
from __future__ import annotations

import os

import click


@click.command('up')
@click.option('--repo', 'repo_path', default=None, type=click.Path(file_okay=False),
              help='Repository directory (the one holding .aim); default: the nearest '
                   '.aim above the current directory.')
@click.option('-h', '--host', default='127.0.0.1', show_default=True,
              help='Address to listen on; keep loopback unless you trust the network.')
@click.option('-p', '--port', default=43800, show_default=True, type=click.IntRange(0, 65535),
              help='Port to listen on; 0 picks a free one.')
@click.option('--read-only', is_flag=True, default=False,
              help='Refuse edits and deletes from the UI.')
@click.option('--log-level', default='warning', show_default=True,
              type=click.Choice(['critical', 'error', 'warning', 'info', 'debug']),
              help='Server log level.')
def up(repo_path, host, port, read_only, log_level):
    """Start the Aim UI (runs, metrics and params explorers, run pages) in the browser."""
    try:
        from aim.web.server import serve
    except ImportError as e:
        raise click.ClickException(
            f'The web UI needs the web extra ({e.name} is missing): '
            f'pip install "aimkit[web]"') from None
    from aim.errors import AimError
    from aim.sdk.repo import Repo

    try:
        if repo_path is None:
            repo = Repo.default_repo()
        else:
            if not os.path.isdir(os.path.join(repo_path, '.aim')):
                raise click.ClickException(
                    f'{repo_path} holds no .aim repository. Create one with '
                    f'`aim init --repo {repo_path}` or point --repo at an existing one.')
            repo = Repo(repo_path, read_only=read_only or None)
        serve(repo, host=host, port=port, read_only=read_only, log_level=log_level)
    except AimError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(str(e)) from None
