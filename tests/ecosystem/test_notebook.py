"""Jupyter: %load_ext aim, %aim up / down, and the HTML of runs and query results, run in
a real kernel through nbclient."""
import re

import pytest

from aim import Repo, Run

nbformat = pytest.importorskip('nbformat')
nbclient = pytest.importorskip('nbclient')
pytest.importorskip('ipykernel')


def _execute(cells, cwd):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name='python3',
                                     resources={'metadata': {'path': str(cwd)}})
    client.execute()
    return nb


def _html(cell) -> str:
    return ''.join(o.get('data', {}).get('text/html', '') for o in cell.outputs)


def _text(cell) -> str:
    return ''.join(o.get('text', '') + o.get('data', {}).get('text/plain', '')
                   for o in cell.outputs)


def test_run_and_query_results_render_as_html(new_repo, tmp_path):
    run = Run(repo=new_repo, experiment='nb', system_tracking_interval=None,
              capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.25}
    for step in range(3):
        run.track(step / 10, name='loss', step=step, context={'subset': 'train'})
    run.close()
    nb = _execute([
        'from aim import Repo',
        f'repo = Repo({new_repo.root_path!r})',
        f'repo.get_run({run.hash!r})',
        'repo.query_runs("run.experiment == \'nb\'")',
        'repo.query_metrics("metric.name == \'loss\'")',
    ], tmp_path)
    run_html, runs_html, metrics_html = (_html(c) for c in nb.cells[2:])
    assert f'Run {run.hash}' in run_html and 'hparams.lr' in run_html and '0.25' in run_html
    assert 'loss' in run_html and '<table' in run_html
    assert run.hash in runs_html and '1 run(s)' in runs_html
    assert 'loss' in metrics_html and "{&#x27;subset&#x27;: &#x27;train&#x27;}" in metrics_html


def test_load_ext_aim_up_and_down(new_repo, tmp_path):
    pytest.importorskip('uvicorn')
    nb = _execute([
        '%load_ext aim',
        '%aim version',
        f'%aim up --repo {new_repo.root_path}',
        'import httpx\n'
        'from aim import notebook\n'
        'url = next(iter(notebook._servers.values()))[1]\n'
        'print(httpx.get(url, timeout=30).status_code)',
        f'%aim up --repo {new_repo.root_path}',          # the same UI, not a second one
        'print(len(notebook._servers))',
        '%aim down',
    ], tmp_path)
    assert 'aimkit' in _text(nb.cells[1])
    link = _html(nb.cells[2])
    url = re.search(r'href="(http://127\.0\.0\.1:\d+/)"', link).group(1)
    assert url in _html(nb.cells[4])
    assert _text(nb.cells[3]).split()[-1] == '200'
    assert _text(nb.cells[5]).strip() == '1'
    assert 'Stopped 1 Aim UI(s).' in _text(nb.cells[6])
    assert Repo(new_repo.root_path).total_runs_count() == 0
