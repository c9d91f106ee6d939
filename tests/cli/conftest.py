import os

import pytest
from click.testing import CliRunner

from aim.cli.main import cli


@pytest.fixture(autouse=True)
def clean_aim_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith('AIM_'):
            monkeypatch.delenv(name)


@pytest.fixture
def make_run():
    """Create closed runs with a few points; every run is closed at teardown."""
    from aim import Run

    opened = []

    def make(repo_path, *, name=None, experiment=None, points=10, close=True):
        run = Run(repo=str(repo_path), experiment=experiment, system_tracking_interval=None,
                  capture_terminal_logs=False)
        opened.append(run)
        if name:
            run.name = name
        run['hparams'] = {'lr': 0.01}
        for step in range(points):
            run.track(step * 0.5, name='loss', step=step, context={'subset': 'train'})
        if close:
            run.close()
        return run

    yield make
    for run in opened:
        run.close()


@pytest.fixture
def repo_dir(tmp_path):
    path = tmp_path / 'repo'
    path.mkdir()
    result = CliRunner().invoke(cli, ['init', '--repo', str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def invoke():
    def run_cli(*args, input=None):
        return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                                  catch_exceptions=False)
    return run_cli


@pytest.fixture
def reopen():
    """A fresh look at a repository, as another process would see it."""
    from aim.sdk.repo import Repo

    return lambda path: Repo(str(path))
