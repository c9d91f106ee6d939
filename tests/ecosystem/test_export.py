"""Export (`aim runs export`, collection .export(), .dataframe()) and the round trip back
through `aim runs import`."""
import csv
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from aim import Repo, Run
from aim.cli.main import cli
from aim.sdk.export import METRIC_COLUMNS

FORMATS = ['parquet', 'csv', 'jsonl']


def _make_runs(repo):
    runs = []
    for i in range(3):
        run = Run(repo=repo, experiment=f'exp{i % 2}', system_tracking_interval=None,
                  capture_terminal_logs=False)
        run.name = f'run {i}'
        run.description = 'déjà vu' if i == 0 else None
        run.add_tag('exported')
        run['hparams'] = {'lr': 0.1 * (i + 1), 'layers': [64, 32], 'name': 'ü'}
        for step in range(50):
            run.track(1.0 / (step + 1), name='loss', step=step, epoch=step // 10,
                      context={'subset': 'train'})
            if step % 5 == 0:
                run.track(step * 2, name='count', step=step)        # an int series, no epoch
        run.track(float('nan'), name='odd', step=0)
        run.track(float('inf'), name='odd', step=1)
        run.track(-float('inf'), name='odd', step=2)
        run.track(2 ** 40 + 1, name='big', step=7)
        if i == 2:
            run.archived = True
        run.close()
        runs.append(run)
    return runs


def _points(repo):
    out = {}
    for run in repo.iter_runs():
        for m in run.metrics():
            steps, values, epochs, times = m._load()
            out[(run.hash, m.name, m.context_json)] = (
                steps.tolist(), [float(v) for v in values], epochs.tolist(), times.tolist())
    return out


def _props(repo):
    return {r.hash: (r.name, r.experiment, r.description, r.tags, r.archived, r[...],
                     r.creation_time, r.end_time) for r in repo.iter_runs()}


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        sa, va, ea, ta = a[key]
        sb, vb, eb, tb = b[key]
        assert sa == sb and ea == eb, key
        assert all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(va, vb)), key
        np.testing.assert_allclose(ta, tb, rtol=0, atol=1e-6)


@pytest.mark.parametrize('fmt', FORMATS)
def test_export_then_import_gives_the_same_points(fmt, new_repo, tmp_path):
    if fmt == 'parquet':
        pytest.importorskip('pyarrow')
    runs = _make_runs(new_repo)
    out = tmp_path / 'export'
    res = CliRunner().invoke(cli, ['runs', '--repo', new_repo.root_path, 'export',
                                   *[r.hash for r in runs], '--format', fmt,
                                   '--output', str(out)])
    assert res.exit_code == 0, res.output
    assert f'Exported 3 run(s), 12 series, {3 * (50 + 10 + 3 + 1)} points' in res.output
    assert (out / 'runs.jsonl').exists() and (out / f'metrics.{fmt}').exists()
    other = tmp_path / 'other'
    res = CliRunner().invoke(cli, ['runs', '--repo', str(other), 'import', str(out)])
    assert res.exit_code == 0, res.output
    assert 'Imported 3 run(s)' in res.output
    back = Repo(str(other))
    _same(_points(new_repo), _points(back))
    assert _props(new_repo) == _props(back)
    # importing again adds nothing
    res = CliRunner().invoke(cli, ['runs', '--repo', str(other), 'import', str(out)])
    assert 'Imported 0 run(s)' in res.output and '3 were already' in res.output


def test_the_documented_schema(new_repo, tmp_path):
    pq = pytest.importorskip('pyarrow.parquet')
    _make_runs(new_repo)
    for fmt in FORMATS:
        new_repo.query_metrics("metric.name == 'loss'").export(str(tmp_path / fmt), fmt)
    table = pq.read_table(tmp_path / 'parquet' / 'metrics.parquet')
    assert tuple(table.column_names) == METRIC_COLUMNS
    assert [str(t) for t in table.schema.types] == [
        'string', 'string', 'string', 'int64', 'double', 'int64', 'double']
    assert table.num_rows == 2 * 50        # the archived run is left out, as in queries
    assert set(table.column('metric_name').to_pylist()) == {'loss'}
    assert json.loads(table.column('context')[0].as_py()) == {'subset': 'train'}
    with open(tmp_path / 'csv' / 'metrics.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == METRIC_COLUMNS and len(rows) == 100
    first = json.loads((tmp_path / 'jsonl' / 'metrics.jsonl').read_text().splitlines()[0])
    assert tuple(first) == METRIC_COLUMNS and first['step'] == 0 and first['epoch'] == 0
    runs = [json.loads(line) for line in
            (tmp_path / 'jsonl' / 'runs.jsonl').read_text().splitlines()]
    assert len(runs) == 2 and runs[0]['params']['hparams']['layers'] == [64, 32]
    # the text formats keep int series exact, and a missing epoch empty
    new_repo.query_metrics("metric.name == 'big'").export(str(tmp_path / 'big'), 'jsonl')
    big = json.loads((tmp_path / 'big' / 'metrics.jsonl').read_text().splitlines()[0])
    assert big['value'] == 2 ** 40 + 1 and big['epoch'] is None


def test_query_dataframe_matches_the_export(new_repo, tmp_path):
    pd = pytest.importorskip('pandas')
    pytest.importorskip('pyarrow')
    _make_runs(new_repo)
    q = new_repo.query_metrics("metric.name == 'loss' and run.hparams.lr > 0.15")
    df = q.dataframe()
    assert len(df) == 50 and set(df['metric.name']) == {'loss'}
    q.export(str(tmp_path / 'q'))
    exported = pd.read_parquet(tmp_path / 'q' / 'metrics.parquet')
    assert len(exported) == len(df)
    assert sorted(exported['value']) == sorted(df['value'])


def test_parquet_without_pyarrow_says_what_to_install(new_repo, tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith('pyarrow'):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    runs = _make_runs(new_repo)
    monkeypatch.setattr(builtins, '__import__', no_pyarrow)
    res = CliRunner().invoke(cli, ['runs', '--repo', new_repo.root_path, 'export',
                                   runs[0].hash, '--output', str(tmp_path / 'x')])
    assert res.exit_code != 0 and 'pip install pyarrow' in res.output


def test_cli_query_export_and_runs_without_points(new_repo, tmp_path):
    runs = _make_runs(new_repo)
    empty = Run(repo=new_repo, system_tracking_interval=None, capture_terminal_logs=False)
    empty['only'] = 'params'
    empty.close()
    res = CliRunner().invoke(cli, ['runs', '--repo', new_repo.root_path, 'export',
                                   '--query', "metric.name == 'big'", '--format', 'jsonl',
                                   '--output', str(tmp_path / 'q')])
    assert res.exit_code == 0, res.output
    assert 'Exported 2 run(s), 2 series, 2 points' in res.output   # the archived run: out
    res = CliRunner().invoke(cli, ['runs', '--repo', new_repo.root_path, 'export',
                                   empty.hash, runs[0].hash, '--format', 'csv',
                                   '--output', str(tmp_path / 'both')])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ['runs', '--repo', str(tmp_path / 'back'), 'import',
                                   str(tmp_path / 'both')])
    assert 'Imported 2 run(s)' in res.output, res.output
    back = Repo(str(tmp_path / 'back'))
    assert back.get_run(empty.hash)[...] == {'only': 'params'}
    assert back.get_run(empty.hash).metrics() == []
    res = CliRunner().invoke(cli, ['runs', '--repo', new_repo.root_path, 'export', 'x',
                                   '--query', 'run.hash != ""', '--output', str(tmp_path / 'z')])
    assert res.exit_code != 0
