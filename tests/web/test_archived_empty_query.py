"""Archived runs stay out of the empty query everywhere: the charts' series, the object
explorers, as out of any query that does not mention run.archived."""
from __future__ import annotations

import numpy as np


def test_empty_query_leaves_archived_runs_out(tmp_path):
    from fastapi.testclient import TestClient

    from aim import Image, Repo, Run
    from aim.web.app import create_app
    hashes = []
    for archived in (False, True):
        run = Run(repo=str(tmp_path), system_tracking_interval=None,
                  capture_terminal_logs=False)
        run.track(1.0, name='loss', step=0)
        run.track(Image(np.zeros((4, 4), dtype=np.uint8)), name='img', step=0)
        run.archived = archived
        run.close()
        hashes.append(run.hash)
    with TestClient(create_app(Repo(str(tmp_path)))) as client:
        series = client.get('/api/series', params={'q': ''}).json()
        assert {s['run']['hash'] if isinstance(s.get('run'), dict) else s.get('run')
                for s in series['series']} == {hashes[0]}
        images = client.get('/api/objects/images', params={'q': ''}).json()
        assert {s['run'] for s in images['series']} == {hashes[0]}
        shown = client.get('/api/objects/images',
                           params={'q': 'run.archived in (True, False)'}).json()
        assert {s['run'] for s in shown['series']} == set(hashes)
    # a listing is not a query: iter_runs() lists every run
    assert {r.hash for r in Repo(str(tmp_path)).iter_runs()} == set(hashes)
