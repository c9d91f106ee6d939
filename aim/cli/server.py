"""``aim server``: serve a repository to remote ``Run(repo='aim://host:port')`` clients.

The socket is bound first (so ``--port 0`` can report the port it got), then the
application of :mod:`aim.remote.serve` is served on it by one uvicorn process, or by
``--workers N`` uvicorn processes sharing that one listening socket.
"""
from __future__ import annotations

import os
import secrets

import click

DEFAULT_PORT = 53800


@click.command('server')
@click.option('--repo', 'repo_path', default=None, type=click.Path(file_okay=False),
              help='Repository directory (the one holding .aim); default: the nearest '
                   '.aim above the current directory.')
@click.option('-h', '--host', default='127.0.0.1', show_default=True,
              help='Address to listen on; another than loopback needs --token-file.')
@click.option('-p', '--port', default=DEFAULT_PORT, show_default=True,
              type=click.IntRange(0, 65535), help='Port to listen on; 0 picks a free one.')
@click.option('--token-file', 'token_file', default=None, envvar='AIM_SERVER_TOKEN_FILE',
              type=click.Path(dir_okay=False),
              help='File of access tokens, one a line: NAME:SECRET or SECRET (env '
                   'AIM_SERVER_TOKEN_FILE). Every request must carry one as "Authorization: '
                   'Bearer SECRET"; required with a --host other than loopback.')
@click.option('--ssl-keyfile', default=None, type=click.Path(exists=True, dir_okay=False),
              help='Serve HTTPS with this private key (with --ssl-certfile).')
@click.option('--ssl-certfile', default=None, type=click.Path(exists=True, dir_okay=False),
              help='Serve HTTPS with this certificate (with --ssl-keyfile).')
@click.option('-w', '--workers', default=1, show_default=True, type=click.IntRange(1, 64),
              help='Server processes sharing the listening socket.')
@click.option('--log-level', default='warning', show_default=True,
              type=click.Choice(['critical', 'error', 'warning', 'info', 'debug']),
              help='Server log level (token first use is logged unless error or critical).')
@click.option('--no-ui', 'no_ui', is_flag=True, default=False,
              help='Serve only the tracking API, not the UI at /.')
@click.option('--query-timeout', 'query_timeout', default=10.0, show_default=True,
              type=click.FloatRange(min=0.1), envvar='AIM_UI_QUERY_TIMEOUT_S',
              help='Seconds one UI query may run (env AIM_UI_QUERY_TIMEOUT_S).')
@click.option('--query-workers', 'query_workers', default=2, show_default=True,
              type=click.IntRange(1, 64), envvar='AIM_UI_QUERY_WORKERS',
              help='UI queries evaluated at once per server process (env '
                   'AIM_UI_QUERY_WORKERS).')
@click.option('--artifacts-destination', 'artifacts_destination', default=None,
              type=click.Path(file_okay=False),
              help='Folder of the artifacts MLflow clients log (docs/mlflow.md); default: '
                   '.aim-mlflow/artifacts in the repository directory.')
@click.option('--dev', is_flag=True, help='Accepted for Aim compatibility: debug logging.')
@click.option('-y', '--yes', is_flag=True, help='Accepted for Aim compatibility (no prompts).')
def server(repo_path, host, port, token_file, ssl_keyfile, ssl_certfile, workers, log_level,
           no_ui, query_timeout, query_workers, artifacts_destination, dev, yes):
    """Serve a repository to remote clients: Run(repo='aim://HOST:PORT') tracks into it,
    and the UI of the repository is at http://HOST:PORT/."""
    if bool(ssl_keyfile) != bool(ssl_certfile):
        raise click.ClickException('HTTPS needs both --ssl-keyfile and --ssl-certfile.')
    if dev:
        log_level = 'debug'
    try:
        import uvicorn

        from aim.remote import serve as serving
        from aim.web.server import allowed_hosts_for, bind_socket, is_loopback
    except ImportError as e:
        raise click.ClickException(
            f'aim server needs the web extra ({e.name} is missing): '
            f'pip install "aimkit[web]"') from None
    serving.configure_logging(log_level)
    tokens = None
    if token_file:
        from aim.remote.auth import load_tokens
        try:
            tokens = load_tokens(token_file)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
    elif not is_loopback(host):
        raise click.ClickException(
            f'Listening on {host} lets other machines reach your runs, so `aim server` needs '
            f'access tokens there. Write one to a file that only you can read, e.g.\n'
            f'  python -c "import secrets; print(\'me:\' + secrets.token_urlsafe(32))" '
            f'> ~/.aim-server-tokens && chmod 600 ~/.aim-server-tokens\n'
            f'and start `aim server --host {host} --token-file ~/.aim-server-tokens` (or set '
            f'AIM_SERVER_TOKEN_FILE); clients set AIM_REMOTE_TOKEN to the part after "me:". '
            f'Or keep the default --host 127.0.0.1.')
    root = _repository(repo_path)
    if artifacts_destination:
        artifacts_destination = os.path.abspath(artifacts_destination)
    try:
        sock = bind_socket(host, port)
    except OSError as e:
        raise click.ClickException(str(e)) from None
    actual_port = sock.getsockname()[1]
    scheme = 'https' if ssl_certfile else 'http'
    shown_host = f'[{host}]' if ':' in host else host
    from aim.storage.postgres import redact
    click.echo(f'aim server listening on {scheme}://{shown_host}:{actual_port} '
               f'(repository {redact(root)})')
    if tokens:
        click.echo(f'Accepted tokens: {", ".join(tokens)} (clients send one as '
                   f'"Authorization: Bearer SECRET", e.g. from AIM_REMOTE_TOKEN)')
    if not no_ui:
        hint = ' (open it once with ?token=SECRET)' if tokens else ''
        click.echo(f'UI: {scheme}://{shown_host}:{actual_port}/{hint}')
    click.echo(f'MLflow clients: mlflow.set_tracking_uri("{scheme}://{shown_host}:'
               f'{actual_port}") (docs/mlflow.md)')
    click.get_text_stream('stdout').flush()

    allowed = allowed_hosts_for(host)
    write_token = secrets.token_urlsafe(32)
    common = dict(log_level=log_level, access_log=False, ssl_keyfile=ssl_keyfile,
                  ssl_certfile=ssl_certfile, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    if workers == 1:
        app = serving.build_app(root, tokens=tokens, ui=not no_ui,
                                query_timeout_s=query_timeout, query_workers=query_workers,
                                write_token=write_token, allowed_hosts=allowed,
                                artifacts_destination=artifacts_destination)
        config = uvicorn.Config(app, **common)
        try:
            _clean_exit_server(config, on_exit=app.close).run(sockets=[sock])
        finally:
            app.close()
        return
    os.environ.update({
        serving.ENV_REPO: root, serving.ENV_UI: '0' if no_ui else '1',
        serving.ENV_QUERY_TIMEOUT: str(query_timeout),
        serving.ENV_QUERY_WORKERS: str(query_workers),
        serving.ENV_WRITE_TOKEN: write_token, serving.ENV_LOG_LEVEL: log_level,
        serving.ENV_ALLOWED_HOSTS: ','.join(allowed or []),
        serving.ENV_ARTIFACTS: artifacts_destination or '',
    })
    if token_file:
        os.environ[serving.ENV_TOKEN_FILE] = os.path.abspath(token_file)
    from uvicorn.supervisors import Multiprocess
    config = uvicorn.Config('aim.remote.serve:app_from_environment', factory=True,
                            workers=workers, **common)
    Multiprocess(config, sockets=[sock]).run()


GRACEFUL_SHUTDOWN_S = 2


def _repository(repo_path: str | None) -> str:
    from aim.sdk.repo import Repo, is_database
    if repo_path is not None and is_database(repo_path):   # PostgreSQL: tables made if missing
        from aim.errors import AimError
        try:
            Repo(repo_path, init=True).close()
        except AimError as e:
            raise click.ClickException(str(e)) from None
        return str(repo_path)
    path = Repo.default_repo_path() if repo_path is None else os.path.abspath(repo_path)
    if not Repo.exists(path):
        shown = repo_path if repo_path is not None else path
        raise click.ClickException(
            f'{shown} holds no .aim repository, and `aim server` serves an existing one. '
            f'Create it with `aim init --repo {shown}`, or point --repo at a repository.')
    return path


def _clean_exit_server(config, on_exit):
    """uvicorn's server (imported here, not when the ``aim`` command starts) that stops
    the UI's query workers at once on SIGTERM / SIGINT, so requests waiting on them answer
    right away, and then exits with status 0 instead of dying by the signal it caught."""
    import uvicorn

    class CleanExitServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            on_exit()
            super().handle_exit(sig, frame)
            captured = getattr(self, '_captured_signals', None)
            if isinstance(captured, list):
                captured.clear()  # uvicorn would raise the signal again after shutdown

    return CleanExitServer(config)
