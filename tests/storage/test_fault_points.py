"""A writer SIGKILLed at each named step of the journal's segment and fold lifecycle
(AIM_TEST_FAULT_POINT, see aim/storage/journal.py): the next opener recovers every
acknowledged point, nothing is quarantined, and the run can be resumed."""
from __future__ import annotations

import importlib.util
import os
import subprocess

import pytest
from click.testing import CliRunner

from aim import Repo, Run
from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location('bench_crash',
                                               REPO_ROOT / 'bench' / 'bench_crash.py')
assert _spec and _spec.loader
crash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crash)

POINTS = [
    'segment.created_before_header',      # segment 0, inside Run()
    'segment.created_before_header:3',    # a roll-over
    'segment.header_before_rename',
    'segment.header_before_rename:4',
    'series.line_written:2',
    'fold.committed_before_marking',
    'segment.unlinked',
    'journal.dir_removal',                # close() removing the journal
]


@pytest.mark.parametrize('point', POINTS)
def test_kill_at_fault_point(point, tmp_path, python):
    root = str(tmp_path / 'repo')
    Repo(root, init=True)
    acks = str(tmp_path / 'acks')
    env = crash.child_env(AIM_TEST_FAULT_POINT=point)
    res = subprocess.run([python, '-c', crash.CHILD, root, acks, 'track', '-', '0', '3000'],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == -9, f'not killed at {point}: {res.stderr[-2000:]}'
    run_hash, last, marks = crash.read_acks(acks)
    assert 'closed' not in marks
    if last is None:   # killed before the first point was acknowledged
        assert ':' not in point or point.startswith('series.')
        last = -1
    counts = crash.Counts()
    assert crash.verify(root, {run_hash: last} if run_hash else {}, counts), counts.errors
    assert counts.lost == 0 and counts.duplicated == 0, counts.errors
    assert not os.listdir(os.path.join(root, '.aim', 'journal'))
    assert not os.path.exists(os.path.join(root, '.aim', 'quarantine'))
    from aim.cli.main import cli
    result = CliRunner().invoke(cli, ['storage', 'check', '--repo', root])
    assert result.exit_code == 0, result.output
    # a new run and a resumed one both work
    repo = Repo(root)
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    run.track(1.0, name='loss', step=0)
    run.close()
    if run_hash is not None:
        resumed = Run(run_hash=run_hash, repo=repo, system_tracking_interval=None,
                      capture_terminal_logs=False)
        resumed.track(-1.0, name='loss', step=last + 1)
        resumed.close()
        st, vals = repo.get_run(run_hash).get_metric('loss', {}).values.sparse_numpy()
        assert st.tolist() == list(range(last + 2))
