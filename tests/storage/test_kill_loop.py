"""The kill loop in its quick mode (bench/bench_crash.py runs the full one): writers and
maintenance commands SIGKILLed at random moments, after each kill a fresh opener finds
every acknowledged point, once."""
from __future__ import annotations

import importlib.util

from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location('bench_crash',
                                               REPO_ROOT / 'bench' / 'bench_crash.py')
assert _spec and _spec.loader
crash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crash)


def test_kill_loop_quick(tmp_path):
    counts = crash.kill_loop(30, seed=7, workdir=str(tmp_path))
    assert counts.kills == 30
    assert counts.unopenable == 0, counts.errors
    assert counts.lost == 0, counts.errors
    assert counts.duplicated == 0, counts.errors
    assert counts.quarantined == 0, counts.errors
    assert not counts.errors
    assert counts.ops.get('new', 0) + counts.ops.get('resume', 0) >= 10
