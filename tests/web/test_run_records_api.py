"""The run page's log records, artifacts and progress (GET /api/runs/{hash}/records)."""
from __future__ import annotations


def test_records_artifacts_and_progress(tmp_path):
    from fastapi.testclient import TestClient

    from aim import Repo, Run
    from aim.web.app import create_app
    model = tmp_path / 'model.pt'
    model.write_bytes(b'w')
    run = Run(repo=str(tmp_path / 'repo'), system_tracking_interval=None,
              capture_terminal_logs=False)
    run.log_info('started <b>training</b>', lr=0.1)
    run.log_warning('loss is high')
    run.set_artifacts_uri(f'file://{tmp_path / "store"}')
    run.log_artifact(str(model))
    run.report_successful_finish()
    run.close()
    with TestClient(create_app(Repo(str(tmp_path / 'repo')))) as client:
        doc = client.get(f'/api/runs/{run.hash}/records').json()
        assert [r['level_name'] for r in doc['log_records']] == ['INFO', 'WARNING']
        assert doc['log_records'][0]['message'] == 'started <b>training</b>'
        assert doc['log_records'][0]['kwargs'] == {'lr': 0.1}
        assert [a['name'] for a in doc['artifacts']] == ['model.pt']
        assert doc['artifacts'][0]['uri'].endswith(f'/{run.hash}/model.pt')
        assert doc['successful_finish'] is True
        assert client.get('/api/runs/nope/records').status_code == 404
