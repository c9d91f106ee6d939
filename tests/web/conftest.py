from __future__ import annotations

import pytest

from tests.web.repo_factory import build_repo


@pytest.fixture(scope='module')
def built_repo(tmp_path_factory):
    """A repository shared by the read-only tests of a module: (path, run hashes)."""
    path = str(tmp_path_factory.mktemp('webrepo'))
    return path, build_repo(path)


@pytest.fixture(scope='module')
def client(built_repo):
    from fastapi.testclient import TestClient

    from aim import Repo
    from aim.web.app import create_app
    with TestClient(create_app(Repo(built_repo[0]))) as c:
        yield c
