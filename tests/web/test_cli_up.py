"""`aim up` argument handling (the serving itself is covered by the browser tests)."""
from __future__ import annotations

import socket

from click.testing import CliRunner

from aim.cli.main import cli


def test_help_lists_the_options():
    result = CliRunner().invoke(cli, ['up', '--help'])
    assert result.exit_code == 0
    for option in ('--repo', '--host', '--port', '--read-only'):
        assert option in result.output


def test_a_directory_without_a_repository_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ['up', '--repo', str(tmp_path), '--port', '0'])
    assert result.exit_code != 0
    assert 'holds no .aim repository' in result.output and 'aim init' in result.output


def test_a_busy_port_is_reported_with_what_to_do(repo_dir):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ['up', '--repo', repo_dir, '--port', str(port)])
    assert result.exit_code != 0
    assert f'Cannot listen on 127.0.0.1:{port}' in result.output
    assert '--port 0' in result.output
