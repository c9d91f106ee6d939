"""``aim storage migrate`` both ways between SQLite and PostgreSQL, and ``aim storage
check/reindex/vacuum`` on a PostgreSQL repository: real ``aim`` subprocesses."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from aim import Repo, Run
from aim.storage.postgres import TABLES
from tests.remote.server_process import aim_command

pytestmark = pytest.mark.slow


def aim(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*aim_command(), *args], capture_output=True, text=True, env=env,
                          timeout=600)


def build(path: str, n_runs: int) -> None:
    repo = Repo(path, init=True)
    for i in range(n_runs):
        run = Run(repo=repo, experiment=f'exp{i % 3}', system_tracking_interval=None,
                  capture_terminal_logs=False)
        run['hparams'] = {'lr': 10 ** -(i % 4), 'i': i, 'name': f'r{i}', 'nan': float('nan')}
        run.add_tag('even' if i % 2 == 0 else 'odd')
        for s in range(40):
            run.track(s * 0.5 + i, name='loss', step=s, context={'subset': 'train'})
            if s % 4 == 0:
                run.track(i * 1000 + s, name='count', step=s, epoch=s // 10)
        run.close()


def contents(repo: Repo) -> dict:
    """Every run's props, params and points."""
    out = {}
    for run in repo.iter_runs():
        series = {}
        for metric in run.metrics():
            steps, values = metric.values.sparse_numpy()
            epochs = metric.epochs.values_numpy() if hasattr(metric, 'epochs') else None
            series[(metric.name, str(metric.context))] = repr(
                (steps.tolist(), values.tolist(),
                 None if epochs is None else np.asarray(epochs).tolist()))   # (nan == nan)
        params = run[...]
        out[run.hash] = (run.name, run.experiment, sorted(run.tags), repr(params), series)
    return out


def test_migrate_300_runs_to_postgres_and_back(tmp_path, pg_url):
    src = str(tmp_path / 'src')
    build(src, 300)
    first = aim('storage', 'migrate', src, pg_url)
    assert first.returncode == 0, first.stderr
    assert 'Copied 300 runs' in first.stdout and 'Verified: 300 runs' in first.stdout
    expected = contents(Repo(src))
    assert len(expected) == 300
    assert contents(Repo(pg_url)) == expected
    # resumable: a second run copies nothing and checks what is there
    again = aim('storage', 'migrate', src, pg_url)
    assert again.returncode == 0, again.stderr
    assert 'Copied 0 runs' in again.stdout and '300 were already there' in again.stdout
    # and back into a new directory
    back = str(tmp_path / 'back')
    result = aim('storage', 'migrate', pg_url, back)
    assert result.returncode == 0, result.stderr
    assert contents(Repo(back)) == expected
    # a query gives the same runs on each side
    q = "run.hparams.lr < 0.05 and 'even' in run.tags"
    assert [r.run.hash for r in Repo(pg_url).query_runs(q).iter_runs()] == \
        [r.run.hash for r in Repo(src).query_runs(q).iter_runs()]


def test_an_interrupted_migration_is_finished_by_running_it_again(tmp_path, pg_url):
    src = str(tmp_path / 'src')
    build(src, 12)
    source = Repo(src)
    hashes = sorted(source.list_all_runs())
    dest = Repo(pg_url)
    for h in hashes[:5]:                     # what a migration killed midway left
        source._store.copy_run_to(h, dest._store)
    result = aim('storage', 'migrate', src, pg_url)
    assert result.returncode == 0, result.stderr
    assert 'Copied 7 runs' in result.stdout and '5 were already there' in result.stdout
    assert contents(Repo(pg_url)) == contents(source)


def test_storage_check_reindex_vacuum_on_postgres(tmp_path, pg_url):
    build(pg_url, 4)
    check = aim('storage', 'check', '--repo', pg_url)
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'All 4 runs are intact.' in check.stdout
    repo = Repo(pg_url)
    h = repo.list_all_runs()[0]
    last = repo.get_run(h).get_metric('loss', {'subset': 'train'}).values.last()[1]
    with repo._store.db.write() as conn:     # a lost index row and a wrong summary
        conn.execute('DELETE FROM runs WHERE hash=?', (h,))
        conn.execute('UPDATE series SET last=-1 WHERE run_hash=?', (h,))
    check = aim('storage', 'check', '--repo', pg_url)
    assert 'no index row' in check.stdout
    reindex = aim('storage', 'reindex', '--repo', pg_url)
    assert reindex.returncode == 0, reindex.stderr
    assert 'Reindexed 4 runs' in reindex.stdout
    assert Repo(pg_url).get_run(h).get_metric('loss', {'subset': 'train'}).values.last()[1] \
        == last
    with repo._store.db.write() as conn:     # a damaged chunk is named by check
        conn.execute("UPDATE chunks SET vals=? WHERE series_id=(SELECT min(id) FROM series "
                     "WHERE run_hash=?)", (b'garbage', h))
    check = aim('storage', 'check', '--repo', pg_url)
    assert check.returncode == 1 and f'DAMAGED {h}' in check.stdout
    repo.delete_run(h)
    vacuum = aim('storage', 'vacuum', '--repo', pg_url)
    assert vacuum.returncode == 0, vacuum.stderr
    assert f'Compacted {len(TABLES)} tables' in vacuum.stdout
    assert aim('storage', 'check', '--repo', pg_url).returncode == 0


def test_aim_runs_commands_on_postgres(tmp_path, pg_url):
    build(pg_url, 3)
    listed = aim('runs', '--repo', pg_url, 'ls')
    assert listed.returncode == 0 and 'Total 3 runs.' in listed.stdout, listed.stderr
    dest = str(tmp_path / 'dest')
    assert aim('init', '--repo', dest).returncode == 0
    copied = aim('runs', '--repo', pg_url, 'cp', '*', '--destination', dest)
    assert copied.returncode == 0, copied.stderr
    assert contents(Repo(dest)) == contents(Repo(pg_url))
    removed = aim('runs', '--repo', pg_url, 'rm', '-y', '*')
    assert removed.returncode == 0, removed.stderr
    assert Repo(pg_url).list_all_runs() == []
    assert len(Repo(dest).list_all_runs()) == 3


def test_a_read_only_postgres_repository_reads_and_refuses_writes(pg_url):
    from aim.errors import RepositoryWriteError
    build(pg_url, 1)
    ro = Repo(pg_url, read_only=True)
    assert len(list(ro.query_runs('run.hparams.lr > 0').iter_runs())) == 1
    with pytest.raises(RepositoryWriteError, match='read-only'):
        Run(repo=ro, system_tracking_interval=None, capture_terminal_logs=False)


def test_a_database_of_a_newer_format_is_refused_at_start_up(pg_url):
    from aim.errors import RepositoryFormatError
    repo = Repo(pg_url, init=True)
    with repo._store.db.write() as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='format_version'")
    repo.close()
    from aim.sdk import repo as repo_module
    repo_module._pool.pop(pg_url, None)
    with pytest.raises(RepositoryFormatError, match='version 99.*upgrade aimkit'):
        Repo(pg_url)
    server = aim('server', '--repo', pg_url, '--port', '0')
    assert server.returncode != 0
    assert 'upgrade aimkit' in server.stderr and 'Traceback' not in server.stderr


def test_a_destination_url_s_password_is_not_printed(tmp_path, pg_url):
    src = str(tmp_path / 'src')
    build(src, 2)
    with_password = pg_url.replace('postgresql://aim@', 'postgresql://aim:pw-s3cret@')
    copied = aim('runs', '--repo', src, 'cp', '*', '--destination', with_password)
    assert copied.returncode == 0, copied.stderr
    assert 'Copied 2 run(s)' in copied.stdout and 'aim:***@' in copied.stdout
    assert 'pw-s3cret' not in copied.stdout + copied.stderr
