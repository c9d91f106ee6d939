"""Props of a run at rest through ``aim://`` (``POST /runs/{hash}/props``): what
``repo.get_run(h).archived = True`` & co. do on a local repository, against a real
``aim server`` over each backend."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from aim import Repo, Run
from aim.errors import InputError, MissingRunError, RunLockedError

pytestmark = pytest.mark.backends

TOKEN = 'props-secret-0123456789abcdef'


@pytest.fixture(autouse=True)
def _spool(tmp_path, monkeypatch):
    monkeypatch.setenv('AIM_SPOOL_DIR', str(tmp_path / 'spool'))
    monkeypatch.setenv('AIM_REMOTE_CLOSE_TIMEOUT_S', '5')


def _closed_run(url: str, **kwargs) -> Run:
    run = Run(repo=url, system_tracking_interval=None, capture_terminal_logs=False, **kwargs)
    run['hparams'] = {'lr': 0.1}
    run.track(1.0, name='loss', step=0)
    run.close()
    return run


def _post(server, path: str, body, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f'{server.http_url}/api/remote/v1{path}', data=json.dumps(body).encode(),
        method='POST', headers={'Content-Type': 'application/json',
                                **({'Authorization': f'Bearer {token}'} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_props_of_a_stored_run_change_through_the_server(aim_server, backend):
    server = aim_server()
    experiment = f'exp-{uuid.uuid4().hex[:8]}'
    written = _closed_run(server.url, experiment=experiment)
    written_tags = Repo(server.url).get_run(written.hash)
    written_tags.add_tag('a')
    written_tags.add_tag('b')

    run = Repo(server.url).get_run(written.hash)
    assert run.tags == ['a', 'b'] and not run.archived
    before = run.updated_at
    run.archived = True
    run.name = 'renamed'
    run.description = 'kept for the paper'
    run.experiment = experiment + '-done'
    run.remove_tag('a')
    run.add_tag('c')
    # the object that set them sees them at once
    assert (run.archived, run.name, run.description, run.experiment, run.tags) == (
        True, 'renamed', 'kept for the paper', experiment + '-done', ['b', 'c'])
    assert run.updated_at >= before
    # so does every later reader, and queries (the server's index row)
    again = Repo(server.url).get_run(written.hash)
    assert (again.archived, again.name, again.description, again.experiment, again.tags) == (
        True, 'renamed', 'kept for the paper', experiment + '-done', ['b', 'c'])
    assert again['hparams'] == {'lr': 0.1}                   # params and series untouched
    assert again.get_metric('loss').values.values_list() == [1.0]
    found = Repo(server.url).query_runs(f"run.experiment == '{experiment}-done' and "
                                        f"run.archived")
    assert [r.run.hash for r in found] == [written.hash]
    assert not list(Repo(server.url).query_runs(f"run.experiment == '{experiment}-done'"))
    run.archived = False
    assert [r.run.hash for r in Repo(server.url).query_runs(
        f"run.experiment == '{experiment}-done'")] == [written.hash]
    if backend == 'sqlite':         # what the server wrote is in its repository
        local = Repo(server.repo).get_run(written.hash)
        assert (local.name, local.tags, local.archived) == ('renamed', ['b', 'c'], False)


def test_refused_while_a_client_writes_the_run(aim_server):
    server = aim_server()
    live = Run(repo=server.url, system_tracking_interval=None, capture_terminal_logs=False)
    try:
        live.track(1.0, name='loss')
        live.flush()                          # the server has the run, and knows it is live
        stored = Repo(server.url).get_run(live.hash)
        with pytest.raises(RunLockedError, match='open for writing') as caught:
            stored.archived = True
        assert caught.value.run_hash == live.hash
        assert not stored.archived            # nothing changed, here or there
        assert not Repo(server.url).get_run(live.hash).archived
        live.name = 'set by its writer'       # the writer itself goes on
    finally:
        live.close()
    stored = Repo(server.url).get_run(live.hash)
    assert stored.name == 'set by its writer'
    stored.archived = True                    # once it has ended
    assert Repo(server.url).get_run(live.hash).archived


@pytest.mark.sqlite_only
def test_refused_while_a_process_on_the_server_machine_writes_it(aim_server):
    server = aim_server()
    local = Run(repo=server.repo, system_tracking_interval=None, capture_terminal_logs=False)
    try:
        local.track(1.0, name='loss')
        stored = Repo(server.url).get_run(local.hash)
        with pytest.raises(RunLockedError, match='change its props through that Run'):
            stored.description = 'no'
    finally:
        local.close()
    assert Repo(server.url).get_run(local.hash).description is None


@pytest.mark.sqlite_only       # the route's checks, the same over either backend
def test_bad_props_and_missing_runs_are_refused(aim_server):
    server = aim_server()
    run = _closed_run(server.url)
    stored = Repo(server.url).get_run(run.hash)
    # the artifacts URI is a prop a client may set (remote runs keep their artifacts)
    stored.set_artifacts_uri('file:///tmp/artifacts')
    assert Repo(server.url).get_run(run.hash)._stored_props()['artifacts_uri'] == \
        'file:///tmp/artifacts'
    with pytest.raises(InputError, match='end_time cannot be changed through the server'):
        Repo(server.url)._store.set_props_at_rest(run.hash, {'end_time': 5.0})
    status, body = _post(server, f'/runs/{run.hash}/props', {'props': {'name': 5}})
    assert status == 400 and 'must be a string' in body['detail']
    status, body = _post(server, f'/runs/{run.hash}/props', {'props': {}})
    assert status == 400 and 'at least one prop' in body['detail']
    status, body = _post(server, f'/runs/{"f" * 24}/props', {'props': {'archived': True}})
    assert status == 404 and body['error'] == 'MissingRunError'
    with pytest.raises(MissingRunError):
        Repo(server.url)._store.set_props_at_rest('f' * 24, {'archived': True})
    assert Repo(server.url).get_run(run.hash).name == f'Run: {run.hash}'


@pytest.mark.sqlite_only
def test_with_tokens_the_change_needs_one(aim_server, monkeypatch):
    server = aim_server(tokens={'alice': TOKEN})
    monkeypatch.setenv('AIM_REMOTE_TOKEN', TOKEN)
    run = _closed_run(server.url)
    for token in (None, 'wrong-token-0123456789'):
        status, _ = _post(server, f'/runs/{run.hash}/props', {'props': {'archived': True}},
                          token)
        assert status == 401
    assert not Repo(server.url).get_run(run.hash).archived
    stored = Repo(server.url).get_run(run.hash)
    stored.archived = True
    assert Repo(server.url).get_run(run.hash).archived
    status, body = _post(server, f'/runs/{run.hash}/props', {'props': {'name': 'n'}}, TOKEN)
    assert status == 200 and body['props']['name'] == 'n' and body['changes']['name'] == 'n'
