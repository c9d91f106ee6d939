"""Fixtures shared by every test: an isolated repository and a clean environment."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    for key in list(os.environ):
        if key.startswith('AIM_') or key.startswith('__AIM_'):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def child_env():
    """Environment for a child Python that must import this checkout's `aim`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get('PYTHONPATH')]))
    env['PYTHONUNBUFFERED'] = '1'
    return env


@pytest.fixture
def python():
    """The interpreter running the tests, for child processes."""
    return sys.executable


@pytest.fixture
def repo_dir(tmp_path):
    """A directory holding a fresh repository."""
    from aim import Repo
    Repo(str(tmp_path), init=True)
    return str(tmp_path)


@pytest.fixture
def repo(repo_dir):
    from aim import Repo
    return Repo.from_path(repo_dir)


@pytest.fixture
def make_run(repo):
    """Create runs with side channels off; every run is closed after the test."""
    from aim import Run
    runs = []

    def make(**kwargs):
        kwargs.setdefault('repo', repo)
        kwargs.setdefault('system_tracking_interval', None)
        kwargs.setdefault('capture_terminal_logs', False)
        run = Run(**kwargs)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.close()
