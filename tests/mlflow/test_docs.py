"""docs/mlflow.md names every endpoint the server answers and the server's option."""
from __future__ import annotations

from pathlib import Path

DOC = (Path(__file__).resolve().parents[2] / 'docs' / 'mlflow.md').read_text()


def test_every_mlflow_endpoint_is_documented(tmp_path):
    from aim import Repo
    from aim.mlflow_api import MlflowApp
    Repo(str(tmp_path), init=True)
    app = MlflowApp(str(tmp_path))
    for route in app.routes:
        group, name = route.split('/')
        if route == 'experiments/list':
            continue   # MLflow 1.x's name of search, kept for old clients
        assert f'`{route}`' in DOC or f'`{name}`' in DOC, f'{route} is not in docs/mlflow.md'
    assert 'logged-models' in DOC


def test_server_option_is_documented():
    from aim.cli.server import server
    options = [o for p in server.params for o in p.opts]
    assert '--artifacts-destination' in options
    assert '--artifacts-destination' in DOC


def test_a_server_no_mlflow_client_talks_to_makes_no_files(tmp_path, monkeypatch):
    import os

    from aim import Repo
    from aim.mlflow_api import MlflowApp
    repo, cwd = tmp_path / 'repo', tmp_path / 'cwd'
    repo.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    Repo(str(repo), init=True)
    MlflowApp(str(repo))
    MlflowApp('postgresql://aim@127.0.0.1:1/none')   # artifacts default to ./mlartifacts
    assert os.listdir(repo) == ['.aim'] and os.listdir(cwd) == []
