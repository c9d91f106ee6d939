"""Start ``aim up`` in a subprocess on a free port and drive a real headless Chromium."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                 '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']


@contextlib.contextmanager
def aim_up(repo_path: str, *extra: str, timeout: float = 20.0, env: dict | None = None,
           process: list | None = None):
    """Yields the base URL of a running ``aim up`` (terminated on exit); ``env`` adds
    environment variables; ``process``, a list, receives the Popen."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    proc = subprocess.Popen([sys.executable, '-m', 'aim.cli.main', 'up', '--repo', repo_path,
                             '--port', '0', *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    if process is not None:
        process.append(proc)
    try:
        url = None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                if proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if 'running at ' in line:
                url = line.split('running at ', 1)[1].split()[0].rstrip('/')
                break
        if url is None:
            raise RuntimeError('aim up did not start:\n' + ''.join(seen))
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 900):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': width, 'height': height})
            page.console_errors = []
            # HTTP errors the pages handle (a 400 for a bad query) are not script errors.
            page.on('console', lambda m: m.type == 'error'
                    and not m.text.startswith('Failed to load resource')
                    and page.console_errors.append(m.text))
            page.on('pageerror', lambda e: page.console_errors.append(str(e)))
            yield page
        finally:
            browser.close()
