"""Small repositories for the web tests, written through the SDK."""
from __future__ import annotations

import math

from aim import Repo, Run

XSS_NAME = '<img src=x onerror="window.__xss=1">run & co'


def quiet_run(repo, **kwargs) -> Run:
    return Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False, **kwargs)


def build_repo(path: str, n_runs: int = 6, steps: int = 300) -> list[str]:
    """``n_runs`` finished runs with params, tags and three series each; run 0 carries a
    one-step spike in ``loss`` at step ``steps // 2`` and a name full of markup."""
    repo = Repo(path, init=True)
    hashes = []
    for i in range(n_runs):
        run = quiet_run(repo, experiment='baseline' if i % 2 == 0 else 'wide')
        run.name = XSS_NAME if i == 0 else f'run-{i}'
        run['hparams'] = {'lr': 10 ** -(i % 3 + 1), 'batch': 32 * (i % 2 + 1),
                          'optimizer': 'adam' if i < 3 else 'sgd'}
        run['seed'] = i
        run.add_tag('even' if i % 2 == 0 else 'odd')
        for s in range(steps):
            loss = math.exp(-s / 100) + 0.01 * i
            if i == 0 and s == steps // 2:
                loss = 100.0
            run.track(loss, name='loss', step=s, epoch=s // 100)
            run.track(1 - loss / 2, name='acc', step=s, context={'subset': 'train'})
            if s % 10 == 0:
                run.track(1 - loss / 1.5, name='acc', step=s, context={'subset': 'val'})
        run.close()
        hashes.append(run.hash)
    return hashes


WRITER = (
    'import sys, time\n'
    'from aim import Run\n'
    'path, runs, steps, every = sys.argv[1], *map(int, sys.argv[2:])\n'
    'runs = [Run(repo=path, system_tracking_interval=None, capture_terminal_logs=False)\n'
    '        for _ in range(runs)]\n'
    'print(" ".join(r.hash for r in runs), flush=True)\n'
    'for step in range(steps):\n'
    '    for run in runs:\n'
    '        run.track(float(step), name="loss", step=step)\n'
    '    if step % every == every - 1:\n'
    '        time.sleep(0.05)\n'
    'for run in runs:\n'
    '    run.close()\n')


def start_writer(path: str, runs: int, steps: int, pause_every: int):
    """A process tracking ``loss`` = step for ``runs`` new runs in lock step, pausing
    50 ms every ``pause_every`` steps: (the process, the run hashes)."""
    import subprocess
    import sys
    writer = subprocess.Popen([sys.executable, '-c', WRITER, path, str(runs), str(steps),
                               str(pause_every)], stdout=subprocess.PIPE, text=True)
    return writer, writer.stdout.readline().split()
