"""``aim storage reindex``: all or nothing, and it skips and names the runs it cannot read."""
from __future__ import annotations

import sqlite3

import pytest
import test_damage_matrix as matrix
from test_damage_matrix import RUN_POINTS, RUNS, db_path, invoke, params_page, readable, smash_page

# the matrix's repository of 20 runs written by a script, and a fresh copy of it per test
template = matrix.template
damaged_copy = matrix.damaged_copy


def index_rows(root) -> dict:
    conn = sqlite3.connect(db_path(root))
    try:
        return {r[0]: r for r in conn.execute('SELECT * FROM runs')}
    finally:
        conn.close()


def test_reindex_skips_a_run_whose_params_page_is_damaged_and_keeps_every_other_run(
        damaged_copy):
    root, hashes = damaged_copy
    victim = hashes[14]
    before = index_rows(root)
    smash_page(root, params_page(root, victim))
    result = invoke('storage', 'reindex', '--repo', root)
    assert result.exit_code == 1, result.output
    assert f'SKIPPED {victim}' in result.output
    assert 'Traceback' not in result.output
    after = index_rows(root)
    assert set(after) == set(before)           # nothing dropped from the listing
    assert after[victim] == before[victim]     # the unreadable run keeps its old row
    points = readable(root)
    assert len(points) == RUNS
    assert all(points[h] == RUN_POINTS for h in hashes)


def test_a_failed_reindex_leaves_the_index_as_it_was(damaged_copy):
    """A failure that stops the whole rebuild (here: the run data cannot even be listed)
    changes nothing."""
    root, hashes = damaged_copy
    before = index_rows(root)
    conn = sqlite3.connect(db_path(root))
    pages = [p for p, in conn.execute("SELECT pageno FROM dbstat WHERE name='run_props' "
                                      "AND pagetype='leaf'")]
    conn.close()
    smash_page(root, pages[len(pages) // 2])
    result = invoke('storage', 'reindex', '--repo', root)
    assert result.exit_code != 0
    assert 'Traceback' not in result.output
    assert index_rows(root) == before
    check = invoke('storage', 'check', '--repo', root)
    assert check.exit_code == 1 and 'the list of runs cannot be read' in check.output


def test_reindex_replaces_a_damaged_run_index_and_vacuum_drops_its_pages(damaged_copy):
    from test_damage_matrix import clear_repo_pool, table_pages

    from aim.errors import RepositoryError
    from aim.sdk.repo import Repo
    root, hashes = damaged_copy
    smash_page(root, sorted(p for p in table_pages(root, 'runs'))[len(hashes) // 2])
    with pytest.raises(RepositoryError):   # queries read the damaged page
        Repo(str(root)).query_runs('run.hparams.lr > 0').hashes()
    result = invoke('storage', 'reindex', '--repo', root)
    assert result.exit_code == 0, result.output
    assert 'vacuum --full' in result.output
    clear_repo_pool()
    points = readable(root)
    assert points == {h: RUN_POINTS for h in hashes}
    assert invoke('storage', 'vacuum', '--full', '--repo', root).exit_code == 0
    check = invoke('storage', 'check', '--repo', root)
    assert check.exit_code == 0, check.output
    clear_repo_pool()
    assert readable(root) == points


KILLED_REINDEX = r'''
import sys, time
from aim.storage.repository import RepoStore

def slow(run_hash):   # inside the transaction: say so, then give the killer time
    print('indexed', run_hash, flush=True)
    time.sleep(0.05)

RepoStore(sys.argv[1]).reindex(progress=slow)
print('done', flush=True)
'''


def test_a_reindex_killed_midway_leaves_the_index_as_it_was(damaged_copy):
    import os
    import signal
    import subprocess
    import sys

    root, hashes = damaged_copy
    sql_conn = sqlite3.connect(db_path(root))
    with sql_conn:   # a stale index: reindex has something to change
        sql_conn.execute("UPDATE runs SET name='stale'")
        sql_conn.execute('UPDATE series SET count=0')
    sql_conn.close()
    before = index_rows(root)
    child = subprocess.Popen([sys.executable, '-c', KILLED_REINDEX, str(root)],
                             env=matrix._child_env(), stdout=subprocess.PIPE, text=True)
    for _ in range(5):   # a quarter of the runs rebuilt, uncommitted
        assert child.stdout.readline().startswith('indexed')
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert index_rows(root) == before
    conn = sqlite3.connect(db_path(root))
    assert conn.execute('SELECT COUNT(*) FROM series WHERE count != 0').fetchone()[0] == 0
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='runs_rebuilt'"
                        ).fetchall() == []
    conn.close()
    assert invoke('storage', 'reindex', '--repo', root).exit_code == 0
    assert readable(root) == {h: RUN_POINTS for h in hashes}


def test_a_write_interrupted_right_after_begin_does_not_block_later_writes(tmp_path):
    """An exception that strikes between BEGIN IMMEDIATE and the transaction's block (a
    script's own signal handler raising) must not leave the connection unable to write."""
    from aim.storage.repository import RepoStore
    store = RepoStore(str(tmp_path), create=True)
    try:
        db = store.db
        conn = db.conn
        conn.execute('BEGIN IMMEDIATE')  # as if write() had been interrupted just after it
        with db.write() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('probe', '1')")
        rows = db.query("SELECT value FROM meta WHERE key='probe'")
        assert [tuple(r) for r in rows] == [('1',)]
    finally:
        store.close()
