"""``aim up``: serve the web UI for a repository."""
from __future__ import annotations

import os

import click


@click.command('up')
@click.option('--repo', 'repo_path', default=None, type=click.Path(file_okay=False),
              help='Repository directory (the one holding .aim); default: the nearest '
                   '.aim above the current directory. aim://HOST:PORT (or aims://) browses '
                   'the runs of an `aim server` through a local proxy.')
@click.option('-h', '--host', default='127.0.0.1', show_default=True,
              help='Address to listen on; keep loopback unless you trust the network.')
@click.option('-p', '--port', default=43800, show_default=True, type=click.IntRange(0, 65535),
              help='Port to listen on; 0 picks a free one.')
@click.option('--read-only', is_flag=True, default=False,
              help='Refuse edits and deletes from the UI.')
@click.option('--log-level', default='warning', show_default=True,
              type=click.Choice(['critical', 'error', 'warning', 'info', 'debug']),
              help='Server log level.')
@click.option('--ssl-keyfile', default=None, type=click.Path(exists=True, dir_okay=False),
              help='Serve HTTPS with this private key (with --ssl-certfile).')
@click.option('--ssl-certfile', default=None, type=click.Path(exists=True, dir_okay=False),
              help='Serve HTTPS with this certificate (with --ssl-keyfile).')
@click.option('--uds', default=None, type=click.Path(dir_okay=False),
              help='Listen on this unix domain socket instead of a TCP port.')
@click.option('-w', '--workers', default=1, show_default=True, type=click.IntRange(1),
              help='Accepted for Aim compatibility; one process serves (it is I/O bound).')
@click.option('--dev', is_flag=True, help='Accepted for Aim compatibility: debug logging.')
@click.option('-y', '--yes', is_flag=True, help='Accepted for Aim compatibility (no prompts).')
@click.option('--base-path', default=None, help='Not supported: serve at / (behind a proxy '
              'that strips the prefix).')
@click.option('--tf_logs', 'tf_logs', default=None, type=click.Path(exists=True, file_okay=False),
              help='Also show the TensorBoard logs in this folder: they are converted into '
                   'the repository now and again every few seconds while the UI runs (see '
                   '`aim convert tensorboard`).')
@click.option('--profiler', is_flag=True, help='Accepted for Aim compatibility (no effect).')
@click.option('--query-timeout', 'query_timeout', default=10.0, show_default=True,
              type=click.FloatRange(min=0.1), envvar='AIM_UI_QUERY_TIMEOUT_S',
              help='Seconds a query of one request may run before it is stopped and the '
                   'request answers 504 (env AIM_UI_QUERY_TIMEOUT_S).')
@click.option('--query-workers', 'query_workers', default=2, show_default=True,
              type=click.IntRange(1, 64), envvar='AIM_UI_QUERY_WORKERS',
              help='Queries evaluated at once, each in its own process; more get 503 '
                   '(env AIM_UI_QUERY_WORKERS).')
@click.option('--token-file', 'token_file', default=None, envvar='AIM_UI_TOKEN_FILE',
              type=click.Path(dir_okay=False),
              help='File holding an access token that every request must carry (Authorization: '
                   'Bearer, or open the UI once with ?token=...); required with a --host other '
                   'than loopback (env AIM_UI_TOKEN_FILE).')
@click.option('--artifacts-root', 'artifact_roots', multiple=True,
              envvar='AIM_UI_ARTIFACT_ROOTS',
              help='A file:// or s3:// URI the run pages may download artifacts from (the '
                   'artifacts URI your runs use); repeat for more. None by default: artifacts '
                   'are listed, not served (env AIM_UI_ARTIFACT_ROOTS, space-separated).')
def up(repo_path, host, port, read_only, log_level, ssl_keyfile, ssl_certfile, uds, workers,
       dev, yes, base_path, tf_logs, profiler, query_timeout, query_workers, token_file,
       artifact_roots):
    """Start the Aim UI (runs, metrics and params explorers, run pages) in the browser."""
    if base_path:
        raise click.ClickException('--base-path is not supported: the UI is served at /. Put '
                                   'it behind a proxy that strips the prefix.')
    if tf_logs and read_only:
        raise click.ClickException('--tf_logs writes the converted logs into the repository; '
                                   'it cannot be combined with --read-only.')
    if bool(ssl_keyfile) != bool(ssl_certfile):
        raise click.ClickException('HTTPS needs both --ssl-keyfile and --ssl-certfile.')
    if workers > 1:
        click.echo(f'Note: --workers {workers} is accepted for Aim compatibility; one process '
                   f'serves the UI.', err=True)
    if dev:
        log_level = 'debug'
    try:
        from aim.web.server import is_loopback, serve
    except ImportError as e:
        raise click.ClickException(
            f'The web UI needs the web extra ({e.name} is missing): '
            f'pip install "aimkit[web]"') from None
    auth_token = read_token_file(token_file) if token_file else None
    if auth_token is None and not uds and not is_loopback(host):
        raise click.ClickException(
            f'Listening on {host} lets other machines reach your runs, so `aim up` needs an '
            f'access token there. Write one to a file that only you can read, e.g.\n'
            f'  python -c "import secrets; print(secrets.token_urlsafe(32))" > ~/.aim-token '
            f'&& chmod 600 ~/.aim-token\n'
            f'and start `aim up --host {host} --token-file ~/.aim-token` (or set '
            f'AIM_UI_TOKEN_FILE). Or keep the default --host 127.0.0.1.')
    from aim.sdk.repo import is_database
    if repo_path is not None and '://' in repo_path and not is_database(repo_path):
        if tf_logs:
            raise click.ClickException('--tf_logs needs a local repository; convert the logs '
                                       'into the server\'s repository with `aim convert '
                                       'tensorboard` on its machine.')
        _serve_remote(repo_path, host=host, port=port, log_level=log_level,
                      ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile, uds=uds,
                      auth_token=auth_token)
        return
    from aim.errors import AimError
    from aim.sdk.repo import Repo

    try:
        if repo_path is None:
            # the nearest .aim above the working directory (or AIM_REPO); never a new,
            # empty repository served by mistake
            found = Repo.default_repo_path()
            if not is_database(found) and not os.path.isdir(os.path.join(found, '.aim')):
                raise click.ClickException(
                    f'No aim repository in {found} or any folder above it. Track a run here '
                    f'first (it creates .aim), run `aim init`, or pass --repo DIR.')
            repo = Repo(found, read_only=read_only or None)
        else:
            if not is_database(repo_path) and not os.path.isdir(os.path.join(repo_path, '.aim')):
                raise click.ClickException(
                    f'{repo_path} holds no .aim repository. Create one with '
                    f'`aim init --repo {repo_path}` or point --repo at an existing one.')
            repo = Repo(repo_path, read_only=read_only or None)
        if tf_logs:
            _sync_tf_logs(repo, tf_logs)
        serve(repo, host=host, port=port, read_only=read_only, log_level=log_level,
              ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile, uds=uds,
              query_timeout_s=query_timeout, query_workers=query_workers,
              auth_token=auth_token, artifact_roots=_artifact_roots(artifact_roots))
    except AimError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(str(e)) from None


def _artifact_roots(roots) -> list[str]:
    from aim.sdk.artifacts import ArtifactError, check_uri
    out = []
    for root in roots:
        try:
            out.append(check_uri(root))
        except (ArtifactError, TypeError) as e:
            raise click.ClickException(f'--artifacts-root {root}: {e}') from None
    return out


TF_LOGS_INTERVAL_S = 5.0


def _sync_tf_logs(repo, logdir: str, interval_s: float = TF_LOGS_INTERVAL_S):
    """Convert ``logdir`` now, then keep converting it in a background thread: runs whose
    event files grew get the new records appended, the others are left alone."""
    import importlib.util
    import threading
    if importlib.util.find_spec('tensorboard') is None:
        raise click.ClickException('--tf_logs reads the logs with the `tensorboard` package, '
                                   'which is not installed: pip install tensorboard')
    from aim.converters.tensorboard import convert_tensorboard

    def convert() -> None:
        report = convert_tensorboard(repo, logdir, workers=1)
        for name, reason in report.failed:
            click.echo(f'--tf_logs: {name} could not be converted: {reason}', err=True)

    convert()
    click.echo(f'Showing the TensorBoard logs in {os.path.abspath(logdir)} (synced every '
               f'{interval_s:g} s).', err=True)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                convert()
            except Exception as e:   # the UI goes on; the next round tries again
                click.echo(f'--tf_logs: sync failed ({e}); retrying.', err=True)

    threading.Thread(target=loop, name='aim-tf-logs-sync', daemon=True).start()
    return stop


def _serve_remote(url: str, **options) -> None:
    """``--repo aim://HOST:PORT``: the UI of an ``aim server``, through a local proxy."""
    from aim.web.remote_proxy import ProxyStartError, serve_remote
    try:
        serve_remote(url, **options)
    except (ProxyStartError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None


MIN_TOKEN_LENGTH = 16


def read_token_file(path: str) -> str:
    try:
        with open(path, encoding='utf-8') as f:
            token = f.read().strip()
    except OSError as e:
        raise click.ClickException(f'Cannot read the token file {path} ({e.strerror}). Point '
                                   f'--token-file at a file holding the access token.') from None
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise click.ClickException(
            f'The token in {path} must be one word of at least {MIN_TOKEN_LENGTH} characters. '
            f'Make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"')
    return token
