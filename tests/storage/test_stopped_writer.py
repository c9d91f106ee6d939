"""A writer stopped (SIGSTOP: Ctrl-Z, a debugger, a frozen container) while it holds a
write transaction on repo.db must not freeze the repository for every other process:
opening and querying take no write lock, and a write that times out says who holds the
lock and what to do."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

HOLDER = r'''
import os, signal, sqlite3, sys
from aim import Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
run['hparams'] = {'lr': 0.1}
run.track(1.0, name='loss', step=0)
conn = sqlite3.connect(os.path.join(sys.argv[1], '.aim', 'repo.db'), isolation_level=None)
conn.execute('BEGIN IMMEDIATE')
conn.execute("INSERT OR REPLACE INTO meta VALUES('x', 'y')")
print(run.hash, flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
'''

READER = r'''
import sys, time
t = time.time()
from aim import Repo
repo = Repo(sys.argv[1])
print(len(list(repo.query_runs('True'))), len(list(repo.iter_runs())), round(time.time() - t, 1))
'''

WRITER = r'''
import sys
import aim.storage.sqlite as s
s.BUSY_TIMEOUT_MS = 1500
from aim import Run
try:
    run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.2}
except Exception as exc:
    print(type(exc).__name__, exc)
else:
    print('no error')
'''


def _env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [root, env.get('PYTHONPATH')]))
    return env


def _state(pid: int) -> str:
    with open(f'/proc/{pid}/stat', 'rb') as f:
        return f.read().rsplit(b')', 1)[1].split()[0].decode()


@pytest.fixture
def stopped_writer(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(tmp_path)], env=_env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        run_hash = holder.stdout.readline().strip()
        assert run_hash, 'the writer did not start'
        deadline = time.time() + 10
        while _state(holder.pid) not in ('T', 't') and time.time() < deadline:
            time.sleep(0.02)
        assert _state(holder.pid) in ('T', 't')
        yield tmp_path, holder.pid, run_hash
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.kill()
        holder.wait()


def _run(script: str, root, timeout: float) -> str:
    out = subprocess.run([sys.executable, '-c', script, str(root)], env=_env(),
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_opening_and_querying_do_not_wait_for_a_stopped_writer(stopped_writer):
    root, _, _ = stopped_writer
    found, listed, took = _run(READER, root, timeout=30).split()
    assert (found, listed) == ('1', '1')
    assert float(took) < 10


def test_aim_runs_ls_does_not_wait_for_a_stopped_writer(stopped_writer):
    root, _, run_hash = stopped_writer
    out = subprocess.run([sys.executable, '-m', 'aim', 'runs', 'ls', '--repo', str(root)],
                         env=_env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert run_hash in out.stdout


def test_a_write_that_times_out_names_the_stopped_process(stopped_writer):
    root, pid, _ = stopped_writer
    said = _run(WRITER, root, timeout=60)
    assert said.startswith('RepositoryError'), said
    assert str(pid) in said and 'stopped' in said and 'kill -CONT' in said
