"""A run that fills the disk: once its user frees what they filled, the next opener
recovers every acknowledged point (aim/storage/recovery.py folds segment by segment and
releases each one's space as its points commit). Needs a small real file system: a tmpfs
mounted for the test (skipped where mounting is not permitted)."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from aim import Repo

WRITER = '''
import os, signal, sys
import numpy as np
from aim.storage import writer
writer.FlushService._loop = lambda self: None   # the database never gets a flush
from aim import Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
values = np.random.default_rng(0).random(2_000_000)
last = -1
try:
    for i in range(len(values)):
        run.track(float(values[i]), name='loss', step=i)
        last = i
except Exception as e:
    print(type(e).__name__, e, file=sys.stderr)
print(run.hash, last, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / 'fs'
    mnt.mkdir()
    res = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f'cannot mount a small tmpfs here: {res.stderr.strip()}')
    try:
        yield str(mnt)
    finally:
        subprocess.run(['umount', '-l', str(mnt)], capture_output=True)


def test_recovery_after_disk_full(small_fs, python, child_env):
    root = os.path.join(small_fs, 'repo')
    Repo(root, init=True)
    filler = os.path.join(small_fs, 'filler')
    with open(filler, 'wb') as f:   # what the user filled the disk with
        f.write(b'\1' * (1 << 19))
    res = subprocess.run([python, '-c', WRITER, root], capture_output=True, text=True,
                         env=child_env, timeout=120)
    assert res.returncode == -9, res.stderr
    assert 'RepositoryWriteError' in res.stderr   # the journal filled the disk
    run_hash, last = res.stdout.split()
    last = int(last)
    assert last > 50_000
    assert not [n for n in os.listdir(os.path.join(root, '.aim', 'journal', run_hash))
                if n.endswith('.tmp')]
    os.unlink(filler)
    repo = Repo(root)
    steps, vals = repo.get_run(run_hash).get_metric('loss', {}).values.sparse_numpy()
    assert np.array_equal(steps, np.arange(last + 1))
    assert np.array_equal(vals, np.random.default_rng(0).random(2_000_000)[:last + 1])
    assert not os.path.exists(os.path.join(root, '.aim', 'journal', run_hash))
    repo.reindex()
    from click.testing import CliRunner

    from aim.cli.main import cli
    result = CliRunner().invoke(cli, ['storage', 'check', '--repo', root])
    assert result.exit_code == 0, result.output
