"""The damage matrix, database side: each kind of damage to ``repo.db`` (and what lies next
to it in ``.aim/``) on a repository of 20 runs written by a real script.

For each case: ``Repo()`` opens (or raises one clear ``RepositoryError`` naming the file
when the shared database itself is unreadable), the damage stays with the runs it hits,
``aim storage check`` names them and exits non-zero, and ``aim storage reindex`` never
loses more than was already lost.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from aim.cli.main import cli

PAGE = 4096
RUNS = 20
LOSS_POINTS = 1500
ACC_POINTS = 50

BUILD_SCRIPT = r'''
import random, sys
from aim import Run
random.seed(7)
for i in range(RUNS):
    run = Run(repo=sys.argv[1], experiment='matrix', system_tracking_interval=None,
              capture_terminal_logs=False)
    run.name = f'run-{i}'
    # the layer list makes each run's params span overflow pages of their own
    run['hparams'] = {'lr': 0.001 * (i + 1), 'batch': 32, 'index': i,
                      'layers': [random.random() for _ in range(600)]}
    run.add_tag('even' if i % 2 == 0 else 'odd')
    for step in range(LOSS_POINTS):
        run.track(random.random(), name='loss', step=step)
    for step in range(ACC_POINTS):
        run.track(step, name='acc', step=step, context={'subset': 'val'})
    run.close()
    print(run.hash, flush=True)
'''.replace('RUNS', str(RUNS)).replace('LOSS_POINTS', str(LOSS_POINTS)).replace(
    'ACC_POINTS', str(ACC_POINTS))

RUN_POINTS = LOSS_POINTS + ACC_POINTS


def build_repository(path, env) -> list[str]:
    """A repository of 20 runs, written by a separate Python process; their hashes in
    creation order."""
    from aim import Repo
    Repo(str(path), init=True).close()
    out = subprocess.run([sys.executable, '-c', BUILD_SCRIPT, str(path)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    hashes = out.stdout.split()
    assert len(hashes) == RUNS
    return hashes


def _child_env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [root, env.get('PYTHONPATH')]))
    return env


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    """(path, hashes) of the repository every case starts from (copied, never damaged)."""
    path = tmp_path_factory.mktemp('matrix') / 'template'
    path.mkdir()
    return path, build_repository(path, _child_env())


@pytest.fixture
def damaged_copy(template, tmp_path):
    """A fresh copy of the template repository: (path, hashes)."""
    src, hashes = template
    dst = tmp_path / 'repo'
    shutil.copytree(src, dst)
    return dst, hashes


def db_path(root) -> str:
    return os.path.join(str(root), '.aim', 'repo.db')


def sql(root, statement: str, args=()) -> None:
    conn = sqlite3.connect(db_path(root))
    with conn:
        conn.execute(statement, args)
    conn.close()


def file_page_holding(root, needle: bytes, table: str) -> int:
    """The page of ``table`` (its b-tree or overflow pages) holding ``needle``."""
    pages = set(table_pages(root, table))
    with open(db_path(root), 'rb') as f:
        raw = f.read()
    at = raw.find(needle)
    while at >= 0 and at // PAGE + 1 not in pages:   # SQLite numbers pages from 1
        at = raw.find(needle, at + 1)
    assert at > 0, f'the bytes to damage are not in a page of {table}'
    return at // PAGE + 1


def table_pages(root, table: str) -> list[int]:
    conn = sqlite3.connect(f'file:{db_path(root)}?mode=ro', uri=True)
    try:
        return [p for p, in conn.execute('SELECT pageno FROM dbstat WHERE name=?', (table,))]
    finally:
        conn.close()


def smash_page(root, pageno: int) -> None:
    """Overwrite page ``pageno`` (numbered from 1, as SQLite does) with garbage."""
    with open(db_path(root), 'r+b') as f:
        f.seek((pageno - 1) * PAGE)
        f.write(b'\xde\xad\xbe\xef' * (PAGE // 4))


def params_page(root, run_hash: str, table: str = 'run_props', middle: bool = True) -> int:
    """A page of ``table`` (run_props or runs) holding a piece of one run's params: from
    their middle (an overflow page of its own), or their start (the row's own page)."""
    conn = sqlite3.connect(db_path(root))
    text, = conn.execute("SELECT value FROM run_props WHERE run_hash=? AND key='params'"
                         if table == 'run_props' else 'SELECT params FROM runs WHERE hash=?',
                         (run_hash,)).fetchone()
    conn.close()
    starts = range(len(text) // 2, len(text) - 32, 40) if middle else range(0, 400, 40)
    for start in starts:   # a piece not cut by a page end
        try:
            return file_page_holding(root, text[start:start + 32].encode(), table)
        except AssertionError:
            continue
    raise AssertionError(f'no page of {table} holds these params')


def chunk_page(root, run_hash: str) -> int:
    """A page holding the end of one run's 'loss' values."""
    conn = sqlite3.connect(db_path(root))
    blob, = conn.execute("SELECT c.vals FROM chunks c JOIN series s ON s.id = c.series_id "
                         "WHERE s.run_hash=? AND s.name='loss'", (run_hash,)).fetchone()
    conn.close()
    return file_page_holding(root, bytes(blob[-200:]), 'chunks')


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def readable(root) -> dict[str, int]:
    """{run hash: points read} for every run the SDK lists and reads completely."""
    from aim.sdk.repo import Repo
    repo = Repo(str(root))
    out = {}
    try:
        for run in repo.iter_runs():
            try:
                out[run.hash] = sum(len(m.values.values_list()) for m in run.metrics())
            except Exception:
                continue
    finally:
        repo.close()
    return out


def clear_repo_pool() -> None:
    """Forget the Repo objects of this process, so the next Repo() reads the disk anew."""
    from aim.sdk import repo as repo_module
    for repo in list(repo_module._pool.values()):
        repo.close()
    repo_module._pool.clear()


MALFORMED = '{"hparams": {"lr": 0.5,'


# -- malformed params ----------------------------------------------------------------------
def test_malformed_params_in_the_index_cost_only_that_run(damaged_copy):
    from aim.sdk.repo import Repo
    root, hashes = damaged_copy
    victim = hashes[5]
    sql(root, 'UPDATE runs SET params=? WHERE hash=?', (MALFORMED, victim))
    repo = Repo(str(root))
    others = set(hashes) - {victim}
    # pushed down to SQL
    assert set(repo.query_runs('run.hparams.lr > 0').hashes()) == others
    assert set(repo.query_runs('not run.hparams.missing').hashes()) == others
    # decided in Python (a call is not pushed down)
    assert set(repo.query_runs("str(run.hparams.batch).startswith('3')").hashes()) == others
    traces = repo.query_metrics("metric.name == 'acc' and run.hparams.index >= 0")
    assert {m.run.hash for m in traces} == others
    # queries that do not read params still list it
    assert len(repo.query_runs('').hashes()) == RUNS
    assert len(repo.query_runs("run.experiment == 'matrix'").hashes()) == RUNS
    assert repo.collect_params()['hparams']['batch'] == 32
    repo.close()


def test_malformed_params_in_the_data_are_named_by_check_and_reindex(damaged_copy):
    root, hashes = damaged_copy
    victim = hashes[5]
    sql(root, "UPDATE run_props SET value=? WHERE run_hash=? AND key='params'",
        (MALFORMED, victim))
    sql(root, 'UPDATE runs SET params=? WHERE hash=?', (MALFORMED, victim))
    check = invoke('storage', 'check', '--repo', root)
    assert check.exit_code == 1
    assert f'DAMAGED {victim}' in check.output and 'params' in check.output
    result = invoke('storage', 'reindex', '--repo', root)
    assert result.exit_code == 1
    assert f'SKIPPED {victim}: its params are not valid JSON' in result.output
    clear_repo_pool()
    from aim.sdk.repo import Repo
    repo = Repo(str(root))
    assert len(repo.query_runs('').hashes()) == RUNS      # still listed, with its props
    assert repo.index.run_row(victim)['name'] == 'run-5'
    assert set(repo.query_runs('run.hparams.lr > 0').hashes()) == set(hashes) - {victim}
    repo.close()


# -- what `aim storage check` compares ----------------------------------------------------
def test_a_stray_file_in_the_aim_folder_is_a_note_not_a_damaged_database(damaged_copy):
    root, _ = damaged_copy
    with open(os.path.join(root, '.aim', 'junk.db'), 'wb') as f:
        f.write(b'not a database at all' * 100)
    with open(os.path.join(root, '.aim', 'notes.txt'), 'w') as f:
        f.write('mine')
    result = invoke('storage', 'check', '--repo', root)
    assert 'repository database itself is damaged' not in result.output
    assert 'REPO' not in result.output
    assert 'NOTE' in result.output and 'junk.db' in result.output \
        and 'notes.txt' in result.output
    assert f'All {RUNS} runs are intact.' in result.output
    assert result.exit_code == 0


WAL_WRITER = r'''
import os, sys
from aim.storage import repository
repository.SYNC_INTERVAL_S = 1e9   # no checkpoint: every commit stays in the WAL
from aim import Run
for i in range(10):
    run = Run(repo=sys.argv[1], experiment='late', system_tracking_interval=None,
              capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.1}
    for step in range(100):
        run.track(step * 0.5, name='loss', step=step)
    run.close()
    print(run.hash, flush=True)
os._exit(0)   # no connection closes, so nothing folds the WAL into repo.db
'''


def write_runs_into_the_wal(root) -> list[str]:
    out = subprocess.run([sys.executable, '-c', WAL_WRITER, str(root)], env=_child_env(),
                         capture_output=True, text=True, timeout=120, check=True)
    wal = db_path(root) + '-wal'
    assert os.path.getsize(wal) > 100 * PAGE, 'the late runs are not in the WAL'
    return out.stdout.split()


def test_check_reports_runs_lost_to_garbage_in_the_wal(damaged_copy):
    root, hashes = damaged_copy
    late = write_runs_into_the_wal(root)
    with open(db_path(root) + '-wal', 'r+b') as f:   # garbage over the first frames
        f.seek(32 + 5 * (24 + PAGE))
        f.write(os.urandom(3 * (24 + PAGE)))
    before_open = invoke('storage', 'check', '--repo', root)   # the WAL as it was left
    points = readable(root)
    assert set(points) >= set(hashes)                 # the runs before the WAL are whole
    lost = set(late) - set(points)
    assert lost
    after_open = invoke('storage', 'check', '--repo', root)    # SQLite has dropped the WAL
    for result in (before_open, after_open):
        assert result.exit_code == 1, result.output
        assert 'runs are intact' not in result.output
        assert 'repo.db-wal' in result.output
        for run_hash in lost:
            assert run_hash in result.output


def test_check_passes_a_wal_with_garbage_appended(damaged_copy):
    root, hashes = damaged_copy
    late = write_runs_into_the_wal(root)
    with open(db_path(root) + '-wal', 'ab') as f:
        f.write(os.urandom(3 * PAGE))
    assert set(readable(root)) == set(hashes) | set(late)
    result = invoke('storage', 'check', '--repo', root)
    assert result.exit_code == 0, result.output


# -- the matrix ------------------------------------------------------------------------------
def _chunk_page(root, hashes):
    smash_page(root, chunk_page(root, hashes[3]))
    return {hashes[3]}


def _runs_page(root, hashes):
    smash_page(root, sorted(table_pages(root, 'runs'))[RUNS // 2])
    return set()     # only the derived index is hit


def _truncated(root, hashes):
    os.truncate(db_path(root), os.path.getsize(db_path(root)) // 3)
    return set(hashes)


def _stray_files(root, hashes):
    with open(os.path.join(root, '.aim', 'junk.db'), 'wb') as f:
        f.write(os.urandom(3 * PAGE))
    os.mkdir(os.path.join(root, '.aim', 'backup'))
    return set()


def _params_in_data(root, hashes):
    sql(root, "UPDATE run_props SET value=? WHERE run_hash=? AND key='params'",
        (MALFORMED, hashes[5]))
    return {hashes[5]}


def _params_in_index(root, hashes):
    sql(root, 'UPDATE runs SET params=? WHERE hash=?', (MALFORMED, hashes[5]))
    return {hashes[5]}


def _undecodable_chunks(root, hashes):
    sql(root, "UPDATE chunks SET vals = x'789c0bad' WHERE series_id IN "
              "(SELECT id FROM series WHERE run_hash=?)", (hashes[7],))
    return {hashes[7]}


def _index_row_without_data(root, hashes):
    sql(root, 'DELETE FROM run_props WHERE run_hash=?', (hashes[8],))
    return {hashes[8]}


def _data_without_index_row(root, hashes):
    sql(root, 'DELETE FROM runs WHERE hash=?', (hashes[9],))
    return {hashes[9]}


MATRIX = {
    'a page of a run\'s chunks': _chunk_page,
    'a page of the runs index': _runs_page,
    'a truncated repo.db': _truncated,
    'stray files in .aim': _stray_files,
    'malformed params in the run data': _params_in_data,
    'malformed params in the index': _params_in_index,
    'undecodable chunks': _undecodable_chunks,
    'an index row without data': _index_row_without_data,
    'data without an index row': _data_without_index_row,
}


def readable_or_nothing(root) -> dict[str, int]:
    from aim.errors import RepositoryError
    clear_repo_pool()
    try:
        return readable(root)
    except RepositoryError:
        return {}


@pytest.mark.parametrize('case', list(MATRIX))
def test_damage_stays_with_what_it_hits(case, damaged_copy):
    from aim.errors import RepositoryError
    from aim.sdk.repo import Repo
    root, hashes = damaged_copy
    hit = MATRIX[case](root, hashes)
    clear_repo_pool()
    try:
        repo = Repo(str(root))
    except RepositoryError as exc:   # only when the shared database itself is unreadable
        assert case == 'a truncated repo.db'
        assert 'repo.db' in str(exc) and 'aim storage check' in str(exc)
    else:
        intact = set(hashes) - hit
        if case == 'a page of the runs index':
            # listed from the run data; a query over the index says to rebuild it
            with pytest.raises(RepositoryError, match='aim storage check'):
                repo.query_runs('run.hparams.lr > 0').hashes()
        else:
            assert intact <= set(repo.query_runs('run.hparams.lr > 0').hashes())
        points = readable_or_nothing(root)
        assert all(points.get(h) == RUN_POINTS for h in intact)
        repo.close()
    before = readable_or_nothing(root)

    check = invoke('storage', 'check', '--repo', root)
    assert 'Traceback' not in check.output
    if case == 'stray files in .aim':   # nothing is wrong with the repository: a note
        assert check.exit_code == 0 and 'NOTE' in check.output and 'junk.db' in check.output
    else:
        assert check.exit_code == 1, check.output
        assert 'runs are intact' not in check.output
    if case == 'a truncated repo.db':   # no run can be read: how to get them back
        assert 'cannot be opened' in check.output and '.recover' in check.output
    else:
        for run_hash in hit:
            assert run_hash in check.output

    reindex = CliRunner().invoke(cli, ['storage', 'reindex', '--repo', str(root)])
    assert not isinstance(reindex.exception, Exception) or \
        isinstance(reindex.exception, SystemExit), reindex.output
    after = readable_or_nothing(root)
    for run_hash, n in before.items():   # reindex never loses what was there
        assert after.get(run_hash, 0) >= n, (run_hash, reindex.output)
    assert sum(after.values()) >= sum(before.values())


def test_check_reports_chunks_that_belong_to_no_series(damaged_copy):
    root, hashes = damaged_copy
    sql(root, "DELETE FROM series WHERE run_hash=? AND name='acc'", (hashes[10],))
    result = invoke('storage', 'check', '--repo', root)
    assert result.exit_code == 1, result.output
    assert 'belong to no series' in result.output
    points = readable_or_nothing(root)
    assert points[hashes[10]] == LOSS_POINTS
    assert all(points[h] == RUN_POINTS for h in hashes if h != hashes[10])
