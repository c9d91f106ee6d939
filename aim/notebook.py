"""Jupyter support: ``%load_ext aim`` and the ``%aim`` line magic, and the HTML that runs
and query results show as a cell's output.

    %load_ext aim
    %aim up --repo . --port 43800     # starts `aim up` in the background, links to it
    %aim down                         # stops the UIs this kernel started
    %aim version

``%aim up`` takes the options of ``aim up`` (``--repo``, ``--port``/``-p``, ``--host``/``-h``,
``--read-only``, ...); without ``--port`` a free port is picked. A UI already started by
this kernel for the same arguments is shown again instead of started twice. The UI
refuses to be framed by other sites (clickjacking protection), so the output is a link
that opens it, not an iframe.

IPython is imported only by the magic's own functions: ``import aim`` stays cheap.
"""
from __future__ import annotations

import html
import queue
import shlex
import subprocess
import sys
import threading
from typing import Any

START_TIMEOUT_S = 60.0
_servers: dict[tuple, tuple[subprocess.Popen, str]] = {}


def load_ipython_extension(ipython) -> None:
    """``%load_ext aim``: registers the ``%aim`` line magic."""
    ipython.register_magic_function(aim_magic, magic_kind='line', magic_name='aim')


def unload_ipython_extension(ipython) -> None:
    down()


def aim_magic(line: str):
    """``%aim up [options of aim up]``, ``%aim down``, ``%aim version``."""
    args = shlex.split(line)
    command, rest = (args[0], args[1:]) if args else ('', [])
    if command == 'up':
        return _display_ui(up(rest))
    if command == 'down':
        stopped = down()
        return f'Stopped {stopped} Aim UI(s).'
    if command == 'version':
        from aim import __version__
        return f'Aim v{__version__} (aimkit)'
    raise ValueError(f'%aim {line}: use %aim up [--repo DIR] [--port N], %aim down or '
                     f'%aim version')


def up(args: list[str]) -> str:
    """Start ``aim up`` with ``args`` in the background (once per distinct ``args``);
    returns its URL."""
    if not any(a in ('-p', '--port') or a.startswith('--port=') for a in args):
        args = [*args, '--port', '0']
    key = tuple(args)
    known = _servers.get(key)
    if known is not None and known[0].poll() is None:
        return known[1]
    proc = subprocess.Popen([sys.executable, '-m', 'aim.cli.main', 'up', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            lines.put(text)
        lines.put(None)
    threading.Thread(target=pump, name='aim-notebook-ui-output', daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            text = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            proc.terminate()
            raise RuntimeError(f'aim up did not start within {START_TIMEOUT_S:g} s: '
                               f'{"".join(seen)[-2000:]}') from None
        if text is None:
            proc.wait()
            raise RuntimeError(f'aim up exited ({proc.returncode}): {"".join(seen)[-2000:]}')
        seen.append(text)
        if 'Aim UI is running at ' in text:
            url = text.split('Aim UI is running at ', 1)[1].split()[0]
            _servers[key] = (proc, url)
            return url


def down() -> int:
    """Stop every UI this kernel started; returns how many were running."""
    stopped = 0
    for key, (proc, _) in list(_servers.items()):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            stopped += 1
        del _servers[key]
    return stopped


def _display_ui(url: str) -> Any:
    from IPython.display import HTML
    return HTML(f'<div class="aim-ui">Aim UI is running at <a href="{html.escape(url)}" '
                f'target="_blank" rel="noopener">{html.escape(url)}</a> (opens in a new tab; '
                f'<code>%aim down</code> stops it).</div>')


# HTML of SDK objects -------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f'{value:.6g}'
    elif value is None:
        text = ''
    else:
        text = str(value)
    if len(text) > 80:
        text = text[:79] + '…'
    return f'<td>{html.escape(text)}</td>'


def table(header: list[str], rows: list[list[Any]], caption: str = '') -> str:
    head = ''.join(f'<th>{html.escape(h)}</th>' for h in header)
    body = ''.join('<tr>' + ''.join(_cell(v) for v in row) + '</tr>' for row in rows)
    cap = f'<caption>{html.escape(caption)}</caption>' if caption else ''
    return (f'<table class="aim-table">{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table>')


def run_html(run) -> str:
    """A run: its props, flattened params and its series with their last values."""
    from aim.sdk.trace import _flatten
    props = [['hash', run.hash], ['name', run.name], ['experiment', run.experiment],
             ['tags', ', '.join(run.tags)], ['created', run.created_at],
             ['active', run.active]]
    params = sorted(_flatten(run.get(..., {}) or {}, '').items())
    metrics = [[m.name, m.context.to_dict() or '', m.count, m.last_step, m.last_value]
               for m in run.metrics()]
    parts = [table(['prop', 'value'], props, f'Run {run.hash}')]
    if params:
        parts.append(table(['param', 'value'], [[k.lstrip('.'), v] for k, v in params]))
    if metrics:
        parts.append(table(['metric', 'context', 'points', 'last step', 'last value'],
                           metrics))
    return '<div class="aim-run">' + ''.join(parts) + '</div>'


def runs_html(items, limit: int = 50) -> str:
    """The first ``limit`` runs of a query result."""
    rows = []
    more = False
    for i, item in enumerate(items):
        if i == limit:
            more = True
            break
        run = item.run
        rows.append([run.hash, run.name, run.experiment, run.created_at])
    caption = f'first {limit} runs' if more else f'{len(rows)} run(s)'
    return table(['hash', 'name', 'experiment', 'created'], rows, caption)


def metrics_html(metrics, limit: int = 50) -> str:
    """The first ``limit`` series of a query result."""
    rows = []
    more = False
    for i, m in enumerate(metrics):
        if i == limit:
            more = True
            break
        rows.append([m.run.hash, m.name, m.context.to_dict() or '', m.count, m.last_step,
                     m.last_value])
    caption = f'first {limit} metrics' if more else f'{len(rows)} metric(s)'
    return table(['run', 'metric', 'context', 'points', 'last step', 'last value'], rows,
                 caption)


__all__ = ['aim_magic', 'down', 'load_ipython_extension', 'metrics_html', 'run_html',
           'runs_html', 'table', 'unload_ipython_extension', 'up']
