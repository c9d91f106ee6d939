"""Tags with colours (GET/PUT/DELETE /api/tags, kept under ``ui.tags`` in the repository's
meta table) and run notes (PATCH /api/runs/{hash} notes, GET .../notes, ``run.notes``),
on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from aim import Repo
from aim.web.app import create_app
from tests.web.repo_factory import build_repo

pytestmark = pytest.mark.backends


def editing(client: TestClient) -> TestClient:
    client.headers['X-Aim-Token'] = client.get('/api/status').json()['write_token']
    return client


@pytest.fixture
def small_repo(repo_location):
    return repo_location, build_repo(repo_location, n_runs=3, steps=3)


def tag_list(client) -> dict:
    return {t['name']: t for t in client.get('/api/tags').json()}


def test_tag_colours_rename_and_remove(small_repo):
    path, hashes = small_repo   # runs 0 and 2 are tagged 'even', run 1 'odd'
    with editing(TestClient(create_app(Repo(path)))) as client:
        assert tag_list(client) == {
            'even': {'name': 'even', 'runs': 2, 'color': None, 'description': None},
            'odd': {'name': 'odd', 'runs': 1, 'color': None, 'description': None}}
        r = client.put('/api/tags/even', json={'color': '#2A9D8F', 'description': 'kept <b>'})
        assert r.status_code == 200, r.text
        assert r.json()['tag'] == {'name': 'even', 'runs': 2, 'color': '#2a9d8f',
                                   'description': 'kept <b>'}
        # only the fields sent change; a tag no run carries yet may get a colour
        client.put('/api/tags/even', json={'description': None})
        client.put('/api/tags/later', json={'color': '#000000'})
        tags = tag_list(client)
        assert tags['even']['color'] == '#2a9d8f' and tags['even']['description'] is None
        assert tags['later'] == {'name': 'later', 'runs': 0, 'color': '#000000',
                                 'description': None}
        for bad in ('red', '#12345', 'javascript:x', '#gggggg'):
            assert client.put('/api/tags/odd', json={'color': bad}).status_code == 422
        # a write without the token is refused
        no_token = client.put('/api/tags/odd', json={'color': '#ffffff'},
                              headers={'X-Aim-Token': 'wrong'})
        assert no_token.status_code == 403
        # rename on every run: the new name keeps the colour
        r = client.put('/api/tags/even', json={'name': 'pair'})
        assert sorted(r.json()['renamed']) == sorted([hashes[0], hashes[2]])
        tags = tag_list(client)
        assert 'even' not in tags and tags['pair']['runs'] == 2 and \
            tags['pair']['color'] == '#2a9d8f'
        assert Repo(path).get_run(hashes[0]).tags == ['pair']
        # remove from every run, with its colour
        r = client.delete('/api/tags/pair')
        assert sorted(r.json()['removed_from']) == sorted([hashes[0], hashes[2]])
        assert 'pair' not in tag_list(client)
        assert Repo(path).get_run(hashes[2]).tags == []
    # stored in the repository: another server sees them
    assert Repo(path).index.get_meta_json('ui.tags') == {'later': {'color': '#000000'}}


def test_read_only_refuses_tag_edits(small_repo):
    path, _ = small_repo
    with editing(TestClient(create_app(Repo(path), read_only=True))) as client:
        for r in (client.put('/api/tags/odd', json={'color': '#ffffff'}),
                  client.delete('/api/tags/odd')):
            assert r.status_code == 403 and r.json()['error']['type'] == 'ReadOnlyError'
        assert tag_list(client)['odd']['color'] is None


def test_notes_through_the_api_and_the_sdk(small_repo, tmp_path):
    path, hashes = small_repo
    text = '# Result\n\n*better* than [base](https://example.com) <script>x</script>\n'
    with editing(TestClient(create_app(Repo(path)))) as client:
        assert client.get(f'/api/runs/{hashes[1]}/notes').json() == {'notes': ''}
        r = client.patch(f'/api/runs/{hashes[1]}', json={'notes': text})
        assert r.status_code == 200, r.text
        assert client.get(f'/api/runs/{hashes[1]}/notes').json() == {'notes': text}
        assert client.get('/api/runs/nope/notes').status_code == 404
        long = client.patch(f'/api/runs/{hashes[1]}', json={'notes': 'x' * 200_001})
        assert long.status_code == 422
    run = Repo(path).get_run(hashes[1])
    assert run.notes == text and Repo(path).get_run(hashes[0]).notes is None
    run.notes = 'edited at rest'
    assert Repo(path).get_run(hashes[1]).notes == 'edited at rest'
    # carried by copy_runs and by an export read back
    Repo(path).copy_runs([hashes[1]], str(tmp_path / 'copy'))
    assert Repo(str(tmp_path / 'copy')).get_run(hashes[1]).notes == 'edited at rest'
    from aim.converters.exported import import_export
    from aim.sdk.export import export_runs
    export_runs(Repo(path), [hashes[1]], str(tmp_path / 'export'), fmt='jsonl')
    import_export(Repo(str(tmp_path / 'imported'), init=True), str(tmp_path / 'export'))
    assert Repo(str(tmp_path / 'imported')).get_run(hashes[1]).notes == 'edited at rest'


def test_tag_colours_set_by_two_processes_at_once_are_all_kept(repo_location):
    """Two servers colouring tags at the same instant: each change of ``ui.tags`` is one
    read-modify-write transaction, so none overwrites another (a lock per process did)."""
    from tests.web.test_views_api import N_EDITS, edit_in_processes
    edit_in_processes(repo_location, lambda i: [
        ('PUT', f'/api/tags/p{i}-t{k}', {'color': f'#0000{k:02x}'}) for k in range(N_EDITS)])
    assert Repo(repo_location).index.get_meta_json('ui.tags') == {
        f'p{i}-t{k}': {'color': f'#0000{k:02x}'} for i in range(2) for k in range(N_EDITS)}
