"""``aim storage migrate`` carries the UI's settings kept in ``meta`` (saved views
``ui.views``, tag colours ``ui.tags``) both ways between SQLite and PostgreSQL, merged into
what the destination already has, and never the storage's own entries."""
from __future__ import annotations

import pytest

from aim import Repo
from aim.storage.migrate import migrate
from aim.storage.pg_repository import PgRepoStore
from aim.storage.repository import RepoStore


def view(view_id: str, name: str, path: str = '/runs') -> dict:
    return {'id': view_id, 'name': name, 'description': '', 'path': path,
            'created': 1.0, 'updated': 1.0}


SOURCE_VIEWS = [view('a', 'sweep', '/metrics?q=lr'), view('b', 'runs'), view('d', 'new one')]
SOURCE_TAGS = {'even': {'color': '#111111', 'description': 'from the source'},
               'odd': {'color': '#222222'}}


def fill_source(store) -> None:
    store.index.set_meta_json('ui.views', SOURCE_VIEWS)
    store.index.set_meta_json('ui.tags', SOURCE_TAGS)
    store.index.set_meta_json('other.setting', {'not': 'ui'})


def test_ui_meta_merges_from_sqlite_into_postgres(tmp_path, pg_url):
    src = RepoStore(str(tmp_path / 'src'), create=True)
    dst = PgRepoStore(pg_url)
    try:
        fill_source(src)
        # the destination has view "b" renamed, a view like "a" (same name and path) saved
        # on its own, and a colour of its own for "even"
        dst.index.set_meta_json('ui.views', [view('b', 'runs, renamed'),
                                             view('x', 'sweep', '/metrics?q=lr')])
        dst.index.set_meta_json('ui.tags', {'even': {'color': '#999999'}})
        report = migrate(src, dst)
        assert report.ok and report.meta == [
            'ui.tags: 1 tags added, 1 completed, 0 already there',
            'ui.views: 1 views added, 2 already there']
        views = dst.index.get_meta_json('ui.views')
        assert [(v['id'], v['name']) for v in views] == \
            [('b', 'runs, renamed'), ('x', 'sweep'), ('d', 'new one')]
        tags = {'even': {'color': '#999999', 'description': 'from the source'},
                'odd': {'color': '#222222'}}
        assert dst.index.get_meta_json('ui.tags') == tags
        # only ``ui.`` keys travel: the destination keeps its own format version
        assert dst.index.get_meta_json('other.setting') is None
        assert dst.db.format_version() == src.db.format_version()
        # again: nothing is added twice
        again = migrate(src, dst)
        assert again.meta == ['ui.tags: 0 tags added, 0 completed, 2 already there',
                              'ui.views: 0 views added, 3 already there']
        assert len(dst.index.get_meta_json('ui.views')) == 3
        assert dst.index.get_meta_json('ui.tags') == tags
    finally:
        src.close()
        dst.close()


def test_ui_meta_arrives_from_postgres_in_a_new_directory(tmp_path, pg_url):
    src = PgRepoStore(pg_url)
    dst = RepoStore(str(tmp_path / 'dst'), create=True)
    try:
        fill_source(src)
        report = migrate(src, dst)
        assert report.ok and report.meta == [
            'ui.tags: 2 tags added, 0 completed, 0 already there',
            'ui.views: 3 views added, 0 already there']
        assert dst.index.get_meta_json('ui.views') == SOURCE_VIEWS
        assert dst.index.get_meta_json('ui.tags') == SOURCE_TAGS
        assert dst.index.get_meta_json('other.setting') is None
    finally:
        src.close()
        dst.close()


@pytest.mark.backends
def test_update_meta_json_stores_removes_and_rolls_back(repo_location):
    index = Repo(repo_location).index
    assert index.update_meta_json('ui.views', lambda v: v + [1], []) == [1]
    assert index.update_meta_json('ui.views', lambda v: v + [2], []) == [1, 2]

    def refuse(value):
        raise ValueError('no')
    with pytest.raises(ValueError):
        index.update_meta_json('ui.views', refuse)
    with pytest.raises(ValueError):          # (PostgreSQL: the row it inserted is gone)
        index.update_meta_json('ui.other', refuse)
    assert index.get_meta_json('ui.views') == [1, 2]
    assert index.query("SELECT count(*) FROM meta WHERE key='ui.other'") == [(0,)]
    assert index.update_meta_json('ui.views', lambda v: None) is None
    assert index.get_meta_json('ui.views', 'none') == 'none'
    with pytest.raises(ValueError):
        index.update_meta_json('format_version', lambda v: 2)


def test_the_migrate_command_says_which_settings_it_copied(tmp_path):
    from click.testing import CliRunner

    from aim.cli.main import cli
    src = RepoStore(str(tmp_path / 'src'), create=True)
    try:
        fill_source(src)
    finally:
        src.close()
    res = CliRunner().invoke(cli, ['storage', 'migrate', str(tmp_path / 'src'),
                                   str(tmp_path / 'dst')])
    assert res.exit_code == 0, res.output
    assert 'Settings ui.tags: 2 tags added, 0 completed, 0 already there' in res.output
    assert 'Settings ui.views: 3 views added, 0 already there' in res.output
