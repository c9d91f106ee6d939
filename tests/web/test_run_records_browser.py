"""The run page's "Log records" and "Artifacts" cards in a real headless Chromium: what
run.log_info() & co. recorded and where run.log_artifact() copied files; hostile text
stays text."""
from __future__ import annotations

import os

import pytest

from tests.web.live_server import CHROMIUM, aim_up, chromium_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason='needs /usr/bin/chromium (scripts/setup_web.sh installs it)'),
]
HOSTILE = '<img src=x onerror="window.__xss=1">'


def test_run_page_lists_log_records_and_artifacts(tmp_path):
    from aim import Run
    repo = str(tmp_path / 'repo')
    model = tmp_path / 'model.pt'
    model.write_bytes(b'w')
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    run.track(0.5, name='loss', step=0)
    run.log_info(f'started {HOSTILE}', lr=0.1)
    run.log_error('diverged')
    run.set_artifacts_uri(f'file://{tmp_path / "store"}')
    run.log_artifact(str(model), name=f'best{HOSTILE}.pt')
    run.close()
    with aim_up(repo, '--artifacts-root', f'file://{tmp_path / "store"}') as url, \
            chromium_page(accept_downloads=True) as page:
        errors = page.console_errors
        page.goto(f'{url}/runs/{run.hash}?tab=logs')
        page.wait_for_selector('#run-log-records tbody tr')
        rows = page.locator('#run-log-records tbody tr')
        assert rows.count() == 2
        assert HOSTILE in rows.nth(0).inner_text() and 'INFO' in rows.nth(0).inner_text()
        assert 'lr=0.1' in rows.nth(0).inner_text()
        assert 'ERROR' in rows.nth(1).inner_text()
        page.wait_for_selector('#run-artifacts tbody tr')
        artifact = page.locator('#run-artifacts tbody tr').first.inner_text()
        assert f'best{HOSTILE}.pt' in artifact and run.hash in artifact
        link = page.locator('#run-artifacts tbody a').first
        assert link.inner_text() == f'best{HOSTILE}.pt'
        with page.expect_download() as download:
            link.click()
        assert open(download.value.path(), 'rb').read() == b'w'
        assert page.evaluate('window.__xss') is None
        assert page.locator('#run-log-records img').count() == 0
    assert errors == []
