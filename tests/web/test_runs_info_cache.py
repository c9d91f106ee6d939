"""The series answers' runs info is cached by the run's whole index row: an edit shows at
once, and the header's JSON joined from the cached pieces is the JSON of the whole."""
from __future__ import annotations

import json

from aim import Repo
from aim.web import series_payload
from aim.web.json_response import dumps
from aim.web.series_payload import dumps_head, runs_info, warm_runs_info
from tests.web.repo_factory import quiet_run


def test_an_edited_run_is_never_served_from_the_cache(tmp_path):
    repo = Repo(str(tmp_path), init=True)
    run = quiet_run(repo)
    run['hparams'] = {'lr': 0.1, 'nested': {'depth': 3}}
    run.add_tag('first')
    run.track(1.0, name='loss')
    run.close()
    before = runs_info(Repo(str(tmp_path)), [run.hash])[run.hash]
    assert before['params'] == {'hparams.lr': 0.1, 'hparams.nested.depth': 3}
    assert before['tags'] == ['first']
    again = runs_info(Repo(str(tmp_path)), [run.hash])
    assert again[run.hash] is before   # the same row: from the cache
    edited = quiet_run(repo, run_hash=run.hash)
    edited['hparams'] = {'lr': 0.2}
    edited.add_tag('second')
    edited.name = 'renamed'
    edited.close()
    after = runs_info(Repo(str(tmp_path)), [run.hash])[run.hash]
    assert after['params'] == {'hparams.lr': 0.2}
    assert sorted(after['tags']) == ['first', 'second'] and after['name'] == 'renamed'


def test_the_joined_header_is_the_json_of_the_whole(tmp_path):
    repo = Repo(str(tmp_path), init=True)
    hashes = []
    for i in range(3):
        run = quiet_run(repo)
        run['hparams'] = {'lr': 10.0 ** -i, 'name': f'"quoted" <{i}> é'}
        run.track(float(i), name='loss')
        run.close()
        hashes.append(run.hash)
    head = {'x_axis': 'step', 'range': [0, 1], 'runs': runs_info(Repo(str(tmp_path)), hashes)}
    assert json.loads(dumps_head(head)) == json.loads(dumps(head))
    assert json.loads(dumps_head(dict(head, runs=runs_info(repo, [])))) == \
        json.loads(dumps(dict(head, runs={})))


def test_the_server_warms_the_newest_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(series_payload, '_RUN_INFO', series_payload._RunInfoCache())
    repo = Repo(str(tmp_path), init=True)
    for _ in range(3):
        run = quiet_run(repo)
        run.track(1.0, name='loss')
        run.close()
    warm_runs_info(Repo(str(tmp_path)), newest=2).join(30)
    assert len(series_payload._RUN_INFO.items) == 2
