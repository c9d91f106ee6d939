import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / 'bench' / 'bench_system_tracking.py'


def test_benchmark_runs_in_quick_mode():
    out = subprocess.run([sys.executable, str(BENCH), '--quick', '--calls', '2000'],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'ratio on/off' in out.stdout
    tracked = out.stdout.split('system series tracked with "on": ')[1].split()[0]
    assert int(tracked) >= 6  # more on a machine with GPUs
