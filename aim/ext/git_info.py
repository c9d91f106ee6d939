"""Git state of the working directory, read with the ``git`` command.

Outside a repository, without ``git`` installed, or when a command hangs (a network
filesystem, a huge tree), the answer is ``{}`` or leaves out the part that failed.
"""
from __future__ import annotations

import re
import subprocess

GIT_TIMEOUT_S = 5.0

# `user:password@` or `token@` in an https remote URL must not end up in the run.
_URL_CREDENTIALS = re.compile(r'^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]+@')


def collect_git_info(cwd: str | None = None) -> dict:
    """``{branch, remote_origin_url, commit: {hash, timestamp, author}, dirty}`` or ``{}``."""
    inside = _git(cwd, 'rev-parse', '--is-inside-work-tree')
    if inside != 'true':
        return {}
    info: dict = {}
    branch = _git(cwd, 'rev-parse', '--abbrev-ref', 'HEAD')
    if branch is not None:
        info['branch'] = branch
    remote = _git(cwd, 'config', '--get', 'remote.origin.url')
    info['remote_origin_url'] = strip_url_credentials(remote) if remote else None
    commit = _git(cwd, 'log', '-1', '--format=%H%x1f%ct%x1f%an <%ae>')
    if commit:
        commit_hash, timestamp, author = commit.split('\x1f', 2)
        info['commit'] = {'hash': commit_hash, 'timestamp': int(timestamp), 'author': author}
    else:  # a repository without commits yet
        info['commit'] = None
    status = _git(cwd, 'status', '--porcelain', '--untracked-files=no')
    if status is not None:
        info['dirty'] = bool(status)
    return info


def strip_url_credentials(url: str) -> str:
    return _URL_CREDENTIALS.sub(r'\g<scheme>', url)


def _git(cwd: str | None, *args: str) -> str | None:
    """Output of one git command, stripped; ``None`` if it fails for any reason."""
    try:
        completed = subprocess.run(
            # --no-optional-locks: never take index.lock away from a git command the
            # user runs at the same time.
            ('git', '--no-optional-locks', *args), cwd=cwd, capture_output=True,
            text=True, errors='replace',
            timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):  # no git, bad cwd, timeout
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()
