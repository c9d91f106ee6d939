import os

import pytest

from aim import Repo, Run
from aim.errors import RepositoryNotFoundError

pytestmark = pytest.mark.backends


def test_default_repo_walks_up(tmp_path, monkeypatch):
    Repo(str(tmp_path), init=True)
    deep = tmp_path / 'a' / 'b'
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Repo.default_repo().root_path == str(tmp_path)
    assert Repo.default_repo_path() == str(tmp_path)


def test_run_without_repo_creates_dot_aim_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = Run(system_tracking_interval=None, capture_terminal_logs=False)
    run.track(1.0, name='x')
    run.close()
    assert os.path.isdir(tmp_path / '.aim')
    assert Repo.exists(str(tmp_path))
    assert [r.hash for r in Repo.default_repo().iter_runs()] == [run.hash]


def test_repo_constructors_and_rm(tmp_path):
    with pytest.raises(RepositoryNotFoundError, match='aim init'):
        Repo(str(tmp_path / 'missing'))
    assert not Repo.exists(str(tmp_path))
    repo = Repo.from_path(str(tmp_path), init=True)
    assert Repo.exists(str(tmp_path)) and Repo.from_path(str(tmp_path)) is repo
    assert Repo(str(tmp_path / '.aim')).root_path == str(tmp_path)  # the .aim dir itself
    Repo.rm(str(tmp_path))
    assert not Repo.exists(str(tmp_path))


def test_get_run_iter_runs_and_counts(repo, make_run):
    assert repo.get_run('nope') is None
    a = make_run()
    b = make_run()
    a.track(1.0, name='x')
    assert set(repo.list_active_runs()) == {a.hash, b.hash}
    b.close()
    assert repo.list_active_runs() == [a.hash]
    assert [r.hash for r in repo.iter_runs()] == [b.hash, a.hash]  # newest first
    assert repo.total_runs_count() == 2 and sorted(repo.list_all_runs()) == sorted([a.hash, b.hash])
    assert repo.get_run(a.hash).active is True


def test_delete_copy_move(tmp_path, repo, make_run):
    run = make_run()
    run['hparams'] = {'lr': 1}
    for i in range(100):
        run.track(float(i), name='loss', context={'subset': 'train'})
    run.close()
    other = Repo(str(tmp_path / 'other'), init=True)
    assert repo.copy_runs([run.hash], other) == (True, [])
    copied = other.get_run(run.hash)
    assert copied['hparams'] == {'lr': 1}
    assert copied.get_metric('loss', {'subset': 'train'}).values.values_list() == [
        float(i) for i in range(100)]
    third = Repo(str(tmp_path / 'third'), init=True)
    assert other.move_runs([run.hash], third) == (True, [])
    assert other.get_run(run.hash) is None and third.get_run(run.hash) is not None
    assert repo.delete_runs([run.hash[:4] + '*']) == (True, [])
    assert repo.get_run(run.hash) is None
    assert repo.delete_run('nope') is False


@pytest.mark.sqlite_only
def test_run_missing_from_index_is_still_found(repo, make_run):
    import sqlite3
    run = make_run()
    run['hparams'] = {'lr': 0.1}
    run.track(1.0, name='x')
    run.close()
    con = sqlite3.connect(repo._store.db_path)
    con.execute('DELETE FROM runs')
    con.commit()
    con.close()
    again = repo.get_run(run.hash)
    assert again['hparams'] == {'lr': 0.1}
    assert again.get_metric('x').values.values_list() == [1.0]
    assert repo.total_runs_count() == 1
