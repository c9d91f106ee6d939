"""Archived runs (issue 16, bug 4): hidden from every query — the empty one included —
unless the query mentions `run.archived`; `Repo.iter_runs()` and `aim runs ls` are not
queries and list every run. `include_archived=True` and `query_mentions_archived()` are
for callers with a "show archived" switch (the web's runs table)."""
from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner

from aim.ql import Query, QuerySyntaxError
from aim.ql.plan import query_mentions_archived

pytestmark = pytest.mark.backends


@pytest.fixture
def archived_repo(repo, make_run):
    """(repo, [kept, archived, kept]) newest last; every run has one 'loss' series."""
    hashes = []
    for i in range(3):
        run = make_run()
        run['hparams'] = {'lr': 0.1 * (i + 1), 'archived': i == 0}
        run.track(1.0, name='loss')
        if i == 1:
            run.archived = True
        run.close()
        hashes.append(run.hash)
        time.sleep(0.002)
    return repo, hashes


def runs(repo, hashes, text, **kwargs):
    return {hashes.index(item.run.hash) for item in repo.query_runs(text, **kwargs)}


def traces(repo, hashes, text, **kwargs):
    return {hashes.index(m.run.hash) for m in repo.query_metrics(text, **kwargs)}


@pytest.mark.parametrize('text, expected', [
    ('', {0, 2}), ('   ', {0, 2}), ('run.hparams.lr > 0', {0, 2}), ('True', {0, 2}),
    ('run.archived', {1}), ('run.archived == True', {1}), ('run.archived == False', {0, 2}),
    ('not run.archived', {0, 2}), ('run.archived in (True, False)', {0, 1, 2}),
    ('run.archived in [True, False] and run.hparams.lr > 0.15', {1, 2}),
    # a param named archived is not the prop
    ('run.hparams.archived == True', {0}), ("run['archived'] == None", {0, 2}),
])
def test_queries_hide_archived_runs_unless_they_mention_it(archived_repo, text, expected):
    repo, hashes = archived_repo
    assert runs(repo, hashes, text) == expected, text


def test_trace_queries_follow_the_same_rule(archived_repo):
    repo, hashes = archived_repo
    assert traces(repo, hashes, '') == {0, 2}
    assert traces(repo, hashes, "metric.name == 'loss'") == {0, 2}
    assert traces(repo, hashes, "metric.name == 'loss' and metric.run.archived") == {1}
    assert traces(repo, hashes, 'run.archived in (True, False)') == {0, 1, 2}


def test_iter_runs_and_runs_ls_list_every_run(archived_repo):
    repo, hashes = archived_repo
    assert {r.hash for r in repo.iter_runs()} == set(hashes)
    from aim.cli.main import cli
    if not repo.is_remote_repo and os.path.isdir(repo.path):
        out = CliRunner().invoke(cli, ['runs', '--repo', repo.path, 'ls'],
                                 catch_exceptions=False).stdout
        assert all(h in out for h in hashes) and 'Total 3 runs.' in out


def test_include_archived_shows_them_for_any_query(archived_repo):
    repo, hashes = archived_repo
    assert runs(repo, hashes, '', include_archived=True) == {0, 1, 2}
    assert runs(repo, hashes, 'run.hparams.lr > 0.15', include_archived=True) == {1, 2}
    # a query about archived still decides
    assert runs(repo, hashes, 'run.archived == False', include_archived=True) == {0, 2}
    assert traces(repo, hashes, "metric.name == 'loss'", include_archived=True) == {0, 1, 2}


def test_the_empty_query_hides_archived_in_sql():
    where, _ = Query('', 'run').where()
    assert 'archived' in where
    assert 'archived' not in Query('', 'run', include_archived=True).where()[0]
    assert Query('run.archived', 'run').where()[0] == '(COALESCE(r.archived, 0) != 0)'


@pytest.mark.parametrize('text, mentions', [
    ('', False), (None, False), ('run.hparams.lr > 0', False), ('run.archived', True),
    ('run.archived in (True, False)', True), ('not run.archived and run.name == "x"', True),
    ('metric.run.archived == True', True), ("run.name == 'run.archived'", False),
    ('run.hparams.archived', False), ("run['archived']", False),
])
def test_query_mentions_archived(text, mentions):
    assert query_mentions_archived(text) is mentions


def test_query_mentions_archived_refuses_what_does_not_parse():
    with pytest.raises(QuerySyntaxError):
        query_mentions_archived('run.archived ==')


@pytest.mark.sqlite_only
def test_through_aim_server(tmp_path_factory, backend, monkeypatch):
    """The server applies the same rule; include_archived travels as a mention."""
    from aim import Repo, Run
    from tests.remote.server_process import AimServer
    monkeypatch.setenv('AIM_SPOOL_DIR', str(tmp_path_factory.mktemp('spool')))
    workdir = str(tmp_path_factory.mktemp('aim-server'))
    Repo(os.path.join(workdir, 'repo'), init=True).close()
    server = AimServer(os.path.join(workdir, 'repo'), workdir).start()
    try:
        hashes = []
        for i in range(2):
            run = Run(repo=server.url, system_tracking_interval=None,
                      capture_terminal_logs=False)
            run['hparams'] = {'lr': 0.1 * (i + 1)}
            run.track(1.0, name='loss')
            run.archived = i == 1
            run.close()
            hashes.append(run.hash)
        remote = Repo.from_path(server.url)
        assert runs(remote, hashes, '') == {0}
        assert runs(remote, hashes, '', include_archived=True) == {0, 1}
        assert runs(remote, hashes, 'run.hparams.lr > 0.15', include_archived=True) == {1}
        assert runs(remote, hashes, 'run.archived') == {1}
        assert traces(remote, hashes, "metric.name == 'loss'", include_archived=True) == {0, 1}
    finally:
        server.stop()
