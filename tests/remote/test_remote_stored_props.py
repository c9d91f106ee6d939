"""Props a run keeps beyond its index row (artifacts, progress) reach the server and read
back through it."""
from __future__ import annotations

import pytest

from aim import Repo, Run

pytestmark = pytest.mark.backends


@pytest.fixture(autouse=True)
def spool(tmp_path, monkeypatch):
    monkeypatch.setenv('AIM_SPOOL_DIR', str(tmp_path / 'spool'))


def test_artifacts_and_progress_of_a_remote_run(aim_server, tmp_path):
    server = aim_server()
    store = tmp_path / 'artifacts'
    model = tmp_path / 'model.pt'
    model.write_bytes(b'weights')
    run = Run(repo=server.url, system_tracking_interval=None, capture_terminal_logs=False)
    run.set_artifacts_uri(f'file://{store}')
    run.log_artifact(str(model))
    run.report_progress()
    run.report_successful_finish()
    run.close()
    for where in (server.url, server.repo):
        read = Repo(where).get_run(run.hash)
        assert list(read.artifacts) == ['model.pt']
        assert read.successful_finish is True
        assert read.progress is not None
    out = tmp_path / 'out'
    Repo(server.url).get_run(run.hash).artifacts['model.pt'].download(str(out))
    assert (out / 'model.pt').read_bytes() == b'weights'
