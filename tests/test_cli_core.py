"""aim init / version / storage reindex through click's CliRunner, checked with the SDK."""
import os
import sqlite3

from click.testing import CliRunner

from aim import Repo, Run
from aim.cli.main import cli


def test_version():
    res = CliRunner().invoke(cli, ['version'])
    assert res.exit_code == 0 and 'Aim v' in res.output


def test_init_is_idempotent(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ['init', '--repo', str(tmp_path)])
    assert res.exit_code == 0 and 'Initialized' in res.output
    run = Run(repo=str(tmp_path), system_tracking_interval=None, capture_terminal_logs=False)
    run.track(1.0, name='x')
    run.close()
    res = runner.invoke(cli, ['init', '--repo', str(tmp_path)])
    assert res.exit_code == 0 and 'already exists' in res.output
    assert Repo(str(tmp_path)).get_run(run.hash).get_metric('x').values.values_list() == [1.0]


def test_reindex_rebuilds_a_lost_index(tmp_path):
    Repo(str(tmp_path), init=True)
    run = Run(repo=str(tmp_path), system_tracking_interval=None, capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.5}
    for i in range(10):
        run.track(float(i), name='loss', context={'subset': 'val'})
    run.close()
    con = sqlite3.connect(os.path.join(tmp_path, '.aim', 'repo.db'))
    con.execute('DELETE FROM runs')
    con.execute('UPDATE series SET count=0, last=NULL, min=NULL, max=NULL')
    con.commit()
    con.close()
    assert Repo(str(tmp_path)).total_runs_count() == 0
    res = CliRunner().invoke(cli, ['storage', 'reindex', '--repo', str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert 'Reindexed 1 runs' in res.output
    repo = Repo(str(tmp_path))
    again = repo.get_run(run.hash)
    assert again['hparams'] == {'lr': 0.5}
    m = again.get_metric('loss', {'subset': 'val'})
    assert (m.count, m.last_value, m.min, m.max) == (10, 9.0, 0.0, 9.0)


def test_commands_on_a_missing_repository(tmp_path):
    res = CliRunner().invoke(cli, ['storage', 'reindex', '--repo', str(tmp_path / 'none')])
    assert res.exit_code != 0 and 'aim init' in res.output


def test_reindex_reports_a_damaged_run_and_indexes_the_others(tmp_path):
    Repo(str(tmp_path), init=True)
    hashes = []
    for lr in (0.1, 0.2):
        run = Run(repo=str(tmp_path), system_tracking_interval=None, capture_terminal_logs=False)
        run['hparams'] = {'lr': lr}
        run.track(1.0, name='loss')
        run.close()
        hashes.append(run.hash)
    con = sqlite3.connect(os.path.join(tmp_path, '.aim', 'repo.db'))
    con.execute("UPDATE chunks SET vals = x'6600112233' WHERE series_id IN "
                "(SELECT id FROM series WHERE run_hash = ?)", (hashes[0],))
    con.commit()
    con.close()
    res = CliRunner().invoke(cli, ['storage', 'reindex', '--repo', str(tmp_path)])
    assert res.exit_code == 1
    assert f'DAMAGED {hashes[0]}' in res.output
    repo = Repo(str(tmp_path))
    assert sorted(r['hparams']['lr'] for r in repo.iter_runs()) == [0.1, 0.2]
    assert repo.get_run(hashes[1]).get_metric('loss').values.values_list() == [1.0]


def test_reading_a_damaged_series_says_which_and_others_still_read(tmp_path):
    import pytest
    from aim.errors import RepositoryError
    Repo(str(tmp_path), init=True)
    run = Run(repo=str(tmp_path), system_tracking_interval=None, capture_terminal_logs=False)
    run.track(1.0, name='bad')
    run.track(2.0, name='good')
    run.close()
    con = sqlite3.connect(os.path.join(tmp_path, '.aim', 'repo.db'))
    con.execute("UPDATE chunks SET vals = x'6600112233' WHERE series_id IN "
                "(SELECT id FROM series WHERE name = 'bad')")
    con.commit()
    con.close()
    again = Repo(str(tmp_path)).get_run(run.hash)
    with pytest.raises(RepositoryError, match="series 'bad'"):
        again.get_metric('bad').values.values_list()
    assert again.get_metric('good').values.values_list() == [2.0]
