"""The params explorer in a real headless Chromium against a real ``aim up`` (issue 16,
bug 10): default axes are the params that vary across the selected runs and that most
runs have, a positive numeric param spanning more than two decades gets a log axis with
decade ticks, and the colour scale has a legend."""
from __future__ import annotations

import json
import os

import pytest

from tests.web.live_server import CHROMIUM, aim_up, chromium_page
from tests.web.repo_factory import quiet_run
from tests.web.test_browser import shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]

LRS = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1]


def _build(path: str) -> None:
    """Eight runs. Alphabetically first come params that say nothing about the runs: the
    same everywhere (a_const, data.path) or set on one run (aaa_note, hparams.beta,
    hparams.comment); the first six names in order left lr and optimizer out."""
    from aim import Repo
    repo = Repo(path, init=True)
    for i, lr in enumerate(LRS):
        run = quiet_run(repo)
        params = {'a_const': 'same', 'data': {'path': '/data'},
                  'hparams': {'lr': lr, 'optimizer': 'adam' if i % 2 else 'sgd',
                              'batch': 32 * (i % 2 + 1)}}
        if i == 3:
            params['aaa_note'] = 'only here'
            params['hparams'].update(beta=0.9, comment='tuned by hand')
        run['hparams'] = params['hparams']
        for key in ('a_const', 'data', 'aaa_note'):
            if key in params:
                run[key] = params[key]
        for step in range(3):
            run.track(0.5 + i / 10 - step / 100, name='loss', step=step)
            run.track(0.1 * i + step / 100, name='acc', step=step)
        run.close()


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('paramsrepo'))
    _build(path)
    with aim_up(path) as url:
        yield url


@pytest.fixture
def page():
    with chromium_page() as p:
        yield p
        assert p.console_errors == []


def _axes(page) -> list[dict]:
    return json.loads(page.locator('#parallel').get_attribute('data-axes'))


def test_default_axes_log_scale_and_legend(server, page):
    page.goto(server + '/params')
    page.wait_for_selector('#page[data-ready="1"]')
    axes = _axes(page)
    assert [a['label'] for a in axes] == ['hparams.batch', 'hparams.lr', 'hparams.optimizer',
                                         'acc', 'loss']
    lr = axes[1]
    assert lr['scale'] == 'log'
    assert lr['ticks'] == ['1e-4', '0.001', '0.01', '0.1']
    assert axes[0]['scale'] == 'linear' and axes[0]['ticks'] == ['40', '50', '60']
    assert axes[2] == {'label': 'hparams.optimizer', 'scale': 'category',
                       'ticks': ['adam', 'sgd']}
    # the axes follow the runs: they are not written into the URL until the user picks
    assert 'params=' not in page.url
    # one stylesheet, loaded by the page; the legend shows the colour metric's range
    assert page.locator('link[href="/static/css/params.css"]').count() == 1
    legend = page.locator('#params-legend')
    assert legend.is_visible()
    assert legend.get_attribute('data-metric') == 'acc'
    assert float(legend.get_attribute('data-min')) == pytest.approx(0.02)
    assert float(legend.get_attribute('data-max')) == pytest.approx(0.72)
    assert 'acc (last value)' in legend.inner_text() and 'no value' in legend.inner_text()
    assert page.evaluate("getComputedStyle(document.querySelector('.params-legend')).display") \
        == 'flex'
    shot(page, 'params-explorer')

    page.select_option('#params-color', 'loss')
    page.wait_for_function("() => document.querySelector('#params-legend').dataset.metric "
                           "=== 'loss'")
    assert 'color=loss' in page.url
    page.select_option('#params-color', '')
    page.wait_for_function("() => document.querySelector('#params-legend').hidden")


def test_axes_follow_the_query_until_the_user_picks(server, page):
    page.goto(server + '/params')
    page.wait_for_selector('#page[data-ready="1"]')
    page.fill('.query-input', 'run.hparams.optimizer == "adam"')
    page.keyboard.press('Enter')
    page.wait_for_function("() => !JSON.parse(document.querySelector('#parallel').dataset.axes)"
                           ".some((a) => a.label === 'hparams.optimizer')")
    axes = _axes(page)
    # adam runs: batch is 64 on all of them, so only lr varies
    assert [a['label'] for a in axes] == ['hparams.lr', 'acc', 'loss']
    assert axes[0]['scale'] == 'log'     # 1e-4 ... 0.03
    # picking an axis makes the choice explicit (and kept in the URL)
    page.click('.columns-menu summary')
    page.locator('.columns-list label.check', has_text='hparams.batch').locator('input').check()
    page.wait_for_function("() => location.search.includes('params=hparams.lr%2Chparams.batch')"
                           " || location.search.includes('params=hparams.lr,hparams.batch')")
    assert [a['label'] for a in _axes(page)][:2] == ['hparams.lr', 'hparams.batch']
    page.reload()
    page.wait_for_selector('#page[data-ready="1"]')
    assert [a['label'] for a in _axes(page)][:2] == ['hparams.lr', 'hparams.batch']
