"""A run whose stored params are not valid JSON: reading them says so, or reads the copy
that is intact; nothing else about the run or the repository is affected."""
from __future__ import annotations

import sqlite3

import pytest

from aim import Repo, Run
from aim.errors import RunError

MALFORMED = '{"hparams": {"lr": 0.1'


def _make(tmp_path) -> str:
    run = Run(repo=str(tmp_path), system_tracking_interval=None, log_system_params=False,
              capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.1}
    for i in range(5):
        run.track(float(i), name='loss', step=i)
    run.close()
    return run.hash


def _sql(tmp_path, statement, args) -> None:
    conn = sqlite3.connect(str(tmp_path / '.aim' / 'repo.db'))
    with conn:
        conn.execute(statement, args)
    conn.close()


def test_params_damaged_in_the_index_are_read_from_the_run_data(tmp_path):
    run_hash = _make(tmp_path)
    _sql(tmp_path, 'UPDATE runs SET params=? WHERE hash=?', (MALFORMED, run_hash))
    run = Repo(str(tmp_path)).get_run(run_hash)
    assert run['hparams'] == {'lr': 0.1}
    assert run.get_metric('loss', {}).values.values_list() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_params_damaged_everywhere_raise_a_run_error_naming_the_run(tmp_path):
    run_hash = _make(tmp_path)
    _sql(tmp_path, 'UPDATE runs SET params=? WHERE hash=?', (MALFORMED, run_hash))
    _sql(tmp_path, "UPDATE run_props SET value=? WHERE run_hash=? AND key='params'",
         (MALFORMED, run_hash))
    run = Repo(str(tmp_path)).get_run(run_hash)
    with pytest.raises(RunError, match=run_hash) as info:
        run['hparams']
    assert 'aim storage check' in str(info.value)
    # the points still read
    assert run.get_metric('loss', {}).values.values_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
