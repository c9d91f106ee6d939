"""Every benchmark script in bench/ runs in its quick mode (proving it works; no timing)."""
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, 'bench', 'bench_*.py')))


@pytest.mark.parametrize('script', SCRIPTS, ids=[os.path.basename(s) for s in SCRIPTS])
def test_benchmark_quick_mode(script, request):
    args = [sys.executable, script, '--quick']
    if os.path.basename(script) == 'bench_mlflow.py':
        # the session's MLflow server: starting another takes most of this quick run
        try:
            args += ['--mlflow-url', request.getfixturevalue('mlflow_own_server')]
        except pytest.skip.Exception:
            pass  # MLflow's server is not installed: the script says so and goes on
    res = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.strip(), 'a benchmark prints its figures'
