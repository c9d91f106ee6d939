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


def test_iter_runs_through_a_server_lists_archived_runs(aim_server):
    server = aim_server()
    runs = []
    for _ in range(2):
        run = Run(repo=server.url, system_tracking_interval=None, capture_terminal_logs=False)
        run.track(1.0, name='loss', step=0)
        run.close()
        runs.append(run.hash)
    Repo(server.url).get_run(runs[0]).archived = True
    assert {r.hash for r in Repo(server.url).iter_runs()} == set(runs)
    assert [r.run.hash for r in Repo(server.url).query_runs('').iter_runs()] == [runs[1]]
