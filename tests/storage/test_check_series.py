"""`aim storage check` against rows lost from repo.db: a chunk of points, a series row, a
series summary that does not match its chunks. Each repository is written by a real
script; the damage is done with plain SQL, as a hand repair of a damaged page or a
dropped log frame would leave it."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from aim.cli.main import cli

POINTS = 5000   # two chunks: 4096 + 904

SCRIPT = r'''
import sys, time
from aim import Run
for i in range(3):
    run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
    run['hparams'] = {'i': i}
    for step in range(POINTS):
        run.track(float(step), name='loss', step=step)
    for step in range(10):
        run.track(step, name='acc', step=step, context={'subset': 'val'})
    run.close()
    print(run.hash, flush=True)
    time.sleep(0.05)
'''.replace('POINTS', str(POINTS))


def _env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [root, env.get('PYTHONPATH')]))
    return env


@pytest.fixture
def repo(tmp_path):
    out = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path)], env=_env(),
                         capture_output=True, text=True, timeout=120, check=True)
    hashes = out.stdout.split()
    assert len(hashes) == 3
    return tmp_path, hashes


def _sql(root, statement: str, args=()) -> list:
    conn = sqlite3.connect(os.path.join(str(root), '.aim', 'repo.db'))
    with conn:
        rows = conn.execute(statement, args).fetchall()
    conn.close()
    return rows


def _series_id(root, run_hash: str, name: str) -> int:
    return _sql(root, 'SELECT id FROM series WHERE run_hash=? AND name=?', (run_hash, name))[0][0]


def _check(root):
    from aim.sdk import repo as repo_module
    for r in list(repo_module._pool.values()):
        r.close()
    repo_module._pool.clear()
    return CliRunner().invoke(cli, ['storage', 'check', '--repo', str(root)],
                              catch_exceptions=False)


def test_an_intact_repository_passes(repo):
    root, _ = repo
    result = _check(root)
    assert result.exit_code == 0, result.output
    assert 'All 3 runs are intact' in result.output


def test_a_lost_last_chunk_is_named_with_its_run_and_series(repo):
    root, hashes = repo
    sid = _series_id(root, hashes[1], 'loss')
    _sql(root, 'DELETE FROM chunks WHERE series_id=? AND seq=1', (sid,))
    result = _check(root)
    assert result.exit_code == 1, result.output
    assert 'intact' not in result.output
    line = next(ln for ln in result.output.splitlines() if hashes[1] in ln)
    assert 'DAMAGED' in line and "'loss'" in line and '904' in line and '5000' in line
    assert hashes[0] not in result.output and hashes[2] not in result.output


def test_a_lost_first_chunk_is_named(repo):
    root, hashes = repo
    sid = _series_id(root, hashes[0], 'loss')
    _sql(root, 'DELETE FROM chunks WHERE series_id=? AND seq=0', (sid,))
    result = _check(root)
    assert result.exit_code == 1, result.output
    line = next(ln for ln in result.output.splitlines() if hashes[0] in ln)
    assert 'DAMAGED' in line and "'loss'" in line and '4096' in line


def test_a_wrong_summary_count_is_flagged_and_reindex_fixes_it(repo):
    root, hashes = repo
    _sql(root, "UPDATE series SET count=count+7 WHERE run_hash=? AND name='acc'", (hashes[2],))
    result = _check(root)
    assert result.exit_code == 1, result.output
    line = next(ln for ln in result.output.splitlines() if hashes[2] in ln)
    assert "'acc'" in line and 'aim storage reindex' in line
    reindex = CliRunner().invoke(cli, ['storage', 'reindex', '--repo', str(root)])
    assert reindex.exit_code == 0, reindex.output
    assert _check(root).exit_code == 0


def test_chunks_of_a_lost_series_row_name_their_run_and_are_not_advised_away(repo):
    root, hashes = repo
    sid = _series_id(root, hashes[1], 'loss')
    _sql(root, 'DELETE FROM series WHERE id=?', (sid,))
    result = _check(root)
    assert result.exit_code == 1, result.output
    assert 'runs in the database read correctly' not in result.output
    assert hashes[1] in result.output and f'#{sid}' in result.output
    assert '5000' in result.output
    assert 'leave them behind' not in result.output


def test_reindex_gives_chunks_of_a_lost_series_row_back_to_their_run(repo):
    from aim.sdk.repo import Repo
    root, hashes = repo
    sid = _series_id(root, hashes[1], 'loss')
    _sql(root, 'DELETE FROM series WHERE id=?', (sid,))
    reindex = CliRunner().invoke(cli, ['storage', 'reindex', '--repo', str(root)])
    assert reindex.exit_code == 0, reindex.output
    assert _check(root).exit_code == 0
    run = Repo(str(root)).get_run(hashes[1])
    names = {m.name: len(m.values.values_list()) for m in run.metrics()}
    assert names.get(f'__lost_series_{sid}') == POINTS


def test_quick_check_finds_a_lost_chunk_from_the_chunk_list(repo):
    root, hashes = repo
    sid = _series_id(root, hashes[2], 'loss')
    _sql(root, 'DELETE FROM chunks WHERE series_id=? AND seq=1', (sid,))
    result = CliRunner().invoke(cli, ['storage', 'check', '--quick', '--repo', str(root)],
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output
    line = next(ln for ln in result.output.splitlines() if hashes[2] in ln)
    assert 'DAMAGED' in line and "'loss'" in line and '904' in line


def test_chunks_of_a_lost_series_row_are_named_when_the_run_index_is_gone_too(repo):
    root, hashes = repo
    sid = _series_id(root, hashes[1], 'loss')
    _sql(root, 'DELETE FROM series WHERE id=?', (sid,))
    _sql(root, 'DROP TABLE runs')
    result = _check(root)
    assert result.exit_code == 1, result.output
    assert f'#{sid}' in result.output and 'candidates' in result.output
    assert hashes[0] in result.output and hashes[1] in result.output
    assert 'cannot be listed' not in result.output
