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


def test_artifacts_are_served_only_from_the_roots_given(tmp_path):
    import os

    from fastapi.testclient import TestClient

    from aim import Repo, Run
    from aim.web.app import create_app
    store = tmp_path / 'store'
    secret = tmp_path / 'secret.txt'
    secret.write_text('not yours')
    model = tmp_path / 'modèle.pt'
    model.write_bytes(b'weights')
    run = Run(repo=str(tmp_path / 'repo'), system_tracking_interval=None,
              capture_terminal_logs=False)
    run.set_artifacts_uri(f'file://{store}')
    run.log_artifact(str(model))
    run.log_artifact(str(model), name='linked.pt')
    run.close()
    linked = store / run.hash / 'linked.pt'
    os.unlink(linked)
    os.symlink(secret, linked)          # a link out of the root is not followed out
    repo = Repo(str(tmp_path / 'repo'))
    url = f'/api/runs/{run.hash}/artifacts/'
    with TestClient(create_app(repo)) as client:          # no roots: listed, not served
        doc = client.get(f'/api/runs/{run.hash}/records').json()
        assert [a['downloadable'] for a in doc['artifacts']] == [False, False]
        assert client.get(url + 'modèle.pt').status_code == 403
    with TestClient(create_app(repo, artifact_roots=[f'file://{tmp_path / "other"}'])) as c:
        assert c.get(url + 'modèle.pt').status_code == 403
    with TestClient(create_app(repo, artifact_roots=[f'file://{store}'])) as client:
        doc = client.get(f'/api/runs/{run.hash}/records').json()
        assert {a['name']: a['downloadable'] for a in doc['artifacts']} == \
            {'linked.pt': False, 'modèle.pt': True}
        got = client.get(url + 'modèle.pt')
        assert got.status_code == 200 and got.content == b'weights'
        assert 'attachment' in got.headers['content-disposition']
        assert client.get(url + 'linked.pt').status_code == 403
        assert client.get(url + 'nope.pt').status_code == 404
