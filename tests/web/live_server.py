"""Start ``aim up`` in a subprocess on a free port and drive a real headless Chromium."""
from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import time

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                 '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']


def browser_bench_missing(library: str, name: str, root: str) -> str | None:
    """Why a bench that draws in Chromium cannot run here: Debian's Chromium, Playwright,
    or the library ``name`` that scripts/setup_web.sh puts at ``library`` (from the npm
    registry) missing; None when everything is there."""
    import importlib.util
    import shutil
    if not os.path.exists(CHROMIUM):
        return f'{CHROMIUM} not found (scripts/setup_web.sh installs it)'
    if importlib.util.find_spec('playwright') is None:
        return 'playwright is not installed (scripts/setup_web.sh installs it)'
    if not os.path.exists(library):
        hint = 'run scripts/setup_web.sh' + ('' if shutil.which('npm') else
                                             ' with npm installed')
        return (f'{name} is not in {os.path.relpath(library, root)} ({hint}; it comes from '
                'the npm registry)')
    return None


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


# One Chromium for the whole test session: a launch takes 1-3 s on a busy machine, a fresh
# context about 50 ms, and a context shares no cookies, storage or cache with another.
_session: list = []   # [playwright, browser] once started


def shared_browser():
    """The session's Chromium, launched on first use (again if it crashed); closed by
    ``close_shared_browser`` at the end of the session (tests/conftest.py)."""
    if _session and _session[1].is_connected():
        return _session[1]
    from playwright.sync_api import sync_playwright
    if not _session:
        _session.extend([sync_playwright().start(), None])
        atexit.register(close_shared_browser)   # scripts (bench/) that borrow it
    _session[1] = _session[0].chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    return _session[1]


def close_shared_browser() -> None:
    if not _session:
        return
    playwright, browser = _session
    _session.clear()
    with contextlib.suppress(Exception):
        browser.close()
    playwright.stop()


def watch_errors(page):
    """``page.console_errors``: the script errors the page logs. HTTP errors the pages
    handle (a 400 for a bad query) are not script errors."""
    page.console_errors = []
    page.on('console', lambda m: m.type == 'error'
            and not m.text.startswith('Failed to load resource')
            and page.console_errors.append(m.text))
    page.on('pageerror', lambda e: page.console_errors.append(str(e)))
    return page


def open_page(width: int = 1400, height: int = 900, **context_options):
    """A page of the shared browser in a fresh context of its own, recording script
    errors; close it with ``page.context.close()``."""
    context = shared_browser().new_context(viewport={'width': width, 'height': height},
                                           **context_options)
    return watch_errors(context.new_page())


@contextlib.contextmanager
def borrowed_browser():
    """A module's ``browser`` fixture: the shared browser; contexts the module left open
    are closed at the end."""
    browser = shared_browser()
    before = {id(c) for c in browser.contexts}
    try:
        yield browser
    finally:
        for context in list(browser.contexts):
            if id(context) not in before:
                with contextlib.suppress(Exception):
                    context.close()


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 900, **context_options):
    page = open_page(width, height, **context_options)
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):
            page.context.close()
