"""Real processes: concurrent writers, SIGKILLed writers, forks, stale locks."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from aim import Repo, Run
from aim.errors import RunLockedError

PY = sys.executable


def run_py(code: str, cwd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PY, '-c', textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, **kwargs)


SEED_TRACK = '''
from aim.sdk.run import Run

run = Run()  # create Run with default repository
run['params'] = {'foo': 'bar'}  # set Run meta-params for 

for i in range(100):
    run.track(i, step=i, name='ordinals', context={})
    run.track(-i, step=i, name='negative integers', context={})
    if i % 2 == 0:
        run.track(i, step=i, name='ordinals', context={'odds': True})
'''


def test_seed_quick_start_read_from_second_process(tmp_path):
    init = subprocess.run([PY, '-m', 'aim.cli.main', 'init'], cwd=tmp_path, capture_output=True,
                          text=True)
    assert init.returncode == 0, init.stderr
    res = run_py(SEED_TRACK, str(tmp_path))
    assert res.returncode == 0, res.stderr
    reader = run_py('''
        from aim.sdk.repo import Repo
        repo = Repo.default_repo()
        runs = list(repo.iter_runs())
        assert len(runs) == 1, runs
        run = runs[0]
        assert run['params'] == {'foo': 'bar'}
        m = run.get_trace('ordinals', {'odds': True})
        print(m.values.values_list() == list(range(0, 100, 2)), run.active)
    ''', str(tmp_path))
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.split() == ['True', 'False']


@pytest.mark.backends
def test_eight_concurrent_writers_lose_nothing(repo_location):
    repo_dir = repo_location
    code = '''
        import sys
        from aim import Run
        k = int(sys.argv[1])
        run = Run(repo=sys.argv[2], system_tracking_interval=None, capture_terminal_logs=False)
        run['k'] = k
        for i in range(5000):
            run.track(float(i), name='loss', step=i, context={'subset': 'train'})
            run.track(i, name='count')
        run.close()
    '''
    procs = [subprocess.Popen([PY, '-c', textwrap.dedent(code), str(k), repo_dir],
                              stderr=subprocess.PIPE, text=True) for k in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    repo = Repo(repo_dir)
    runs = list(repo.iter_runs())
    assert sorted(r['k'] for r in runs) == list(range(8))
    for r in runs:
        loss = r.get_metric('loss', {'subset': 'train'})
        steps, vals = loss.values.sparse_numpy()
        assert np.array_equal(steps, np.arange(5000))
        assert np.array_equal(vals, np.arange(5000, dtype=float))
        assert r.get_metric('count').count == 5000
        assert not r.active


KILLED_WRITER = '''
import sys, time
from aim import Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
run['hparams'] = {'lr': 0.1}
print(run.hash, flush=True)
i = 0
while True:
    run.track(float(i), name='loss', step=i)
    run.track(i, name='count', step=i, context={'c': 1})
    i += 1
    if i % 1000 == 0:
        # acknowledged: every track() above has returned
        sys.stdout.write(f'{i}\\n'); sys.stdout.flush()
'''


def test_sigkill_loses_no_acknowledged_point(repo_dir):
    proc = subprocess.Popen([PY, '-c', KILLED_WRITER, repo_dir], stdout=subprocess.PIPE,
                            text=True)
    run_hash = proc.stdout.readline().strip()
    acked = 0
    t0 = time.time()
    while time.time() - t0 < 1.5:
        line = proc.stdout.readline()
        if line.strip():
            acked = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert acked > 1000
    # a new process sees every acknowledged point at once, with no holes
    reader = run_py(f'''
        from aim import Repo
        repo = Repo({repo_dir!r})
        run = repo.get_run({run_hash!r})
        m = run.get_metric('loss')
        steps, vals = m.values.sparse_numpy()
        import numpy as np
        n = len(steps)
        assert np.array_equal(steps, np.arange(n)), 'holes'
        assert np.array_equal(vals, np.arange(n, dtype=float))
        c = run.get_metric('count', {{'c': 1}})
        print(n, len(c), run.active, run.end_time is not None, run['hparams']['lr'])
    ''', repo_dir)
    assert reader.returncode == 0, reader.stderr
    n, n_count, active, ended, lr = reader.stdout.split()
    assert int(n) >= acked and int(n_count) >= acked
    assert (active, ended, lr) == ('False', 'True', '0.1')
    # the killed run can be reopened for writing and continued, and new runs created
    resumed = Run(run_hash, repo=repo_dir, system_tracking_interval=None,
                  capture_terminal_logs=False)
    resumed.track(-1.0, name='loss')
    assert resumed.get_metric('loss').last_step == int(n)
    resumed.close()
    fresh = Run(repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False)
    fresh.track(1.0, name='x')
    fresh.close()
    assert Repo(repo_dir).total_runs_count() == 2


def test_live_run_cannot_be_opened_twice_for_writing(repo_dir):
    proc = subprocess.Popen([PY, '-c', KILLED_WRITER, repo_dir], stdout=subprocess.PIPE,
                            text=True)
    try:
        run_hash = proc.stdout.readline().strip()
        with pytest.raises(RunLockedError) as info:
            Run(run_hash, repo=repo_dir, system_tracking_interval=None)
        assert info.value.pid == proc.pid
        assert str(proc.pid) in str(info.value)
        # readers are never blocked by the writer, and see its points within ~1 s
        deadline = time.time() + 15
        while True:
            ro = Repo(repo_dir).get_run(run_hash)
            metric = ro.get_metric('loss')
            if (metric is not None and metric.count > 0) or time.time() > deadline:
                break
            time.sleep(0.2)
        assert ro.active is True
        assert metric is not None and metric.count > 0
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_file_blocks_nothing(repo_dir):
    res = run_py(f'''
        import os
        from aim import Run
        run = Run(repo={repo_dir!r}, system_tracking_interval=None, capture_terminal_logs=False)
        run.track(1.0, name='x')
        run.flush()
        print(run.hash, flush=True)
        os._exit(0)   # dies without closing: lock file and journal stay behind
    ''', repo_dir)
    run_hash = res.stdout.strip()
    assert os.path.exists(os.path.join(repo_dir, '.aim', 'locks', f'{run_hash}.lock'))
    run = Run(run_hash, repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False)
    run.track(2.0, name='x')
    assert run.get_metric('x').values.values_list() == [1.0, 2.0]
    run.close()


def test_forked_child_never_writes_parent_run(make_run):
    run = make_run()
    run.track(1.0, name='x', step=0)
    pid = os.fork()
    if pid == 0:  # child
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            run.track(99.0, name='x', step=0)
            run.track(99.0, name='child', step=0)
        os._exit(0)
    os.waitpid(pid, 0)
    run.track(2.0, name='x', step=1)
    assert run.get_metric('x').values.values_list() == [1.0, 2.0]
    assert run.get_metric('child') is None


def test_format_version_is_checked(repo_dir):
    import sqlite3
    con = sqlite3.connect(os.path.join(repo_dir, '.aim', 'repo.db'))
    con.execute("UPDATE meta SET value='99' WHERE key='format_version'")
    con.commit()
    con.close()
    from aim.errors import RepositoryFormatError
    from aim.sdk import repo as repo_mod
    repo_mod._pool.clear()
    with pytest.raises(RepositoryFormatError, match='version 99'):
        Repo(repo_dir)


@pytest.fixture
def small_mount(tmp_path):
    """A real 3 MiB tmpfs: a disk that fills up, and that can be remounted read-only."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir()
    res = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3M', 'tmpfs', str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f'needs permission to mount a tmpfs: {res.stderr.strip()}')
    yield str(mnt)
    subprocess.run(['umount', '-l', str(mnt)], capture_output=True)


def test_read_only_repository_gives_clear_error_and_still_reads(small_mount):
    from aim.errors import RepositoryWriteError
    res = run_py(f'''
        from aim import Repo, Run
        Repo({small_mount!r}, init=True)
        run = Run(repo={small_mount!r}, system_tracking_interval=None, capture_terminal_logs=False)
        run['hparams'] = {{'lr': 0.1}}
        run.track(1.0, name='kept')
        run.close()
    ''', small_mount)
    assert res.returncode == 0, res.stderr
    subprocess.run(['mount', '-o', 'remount,ro', small_mount], check=True)
    with pytest.raises(RepositoryWriteError, match='cannot be written'):
        Run(repo=small_mount, system_tracking_interval=None, capture_terminal_logs=False)
    repo = Repo(small_mount)
    runs = list(repo.iter_runs())
    assert runs[0]['hparams'] == {'lr': 0.1}
    assert runs[0].get_metric('kept').values.values_list() == [1.0]


def test_full_disk_gives_clear_error_and_keeps_what_was_stored(small_mount):
    from aim.errors import RepositoryWriteError
    Repo(small_mount, init=True)
    kept = Run(repo=small_mount, system_tracking_interval=None, capture_terminal_logs=False)
    kept.track(1.0, name='kept')
    kept.close()
    run = Run(repo=small_mount, system_tracking_interval=None, capture_terminal_logs=False)
    with pytest.raises(RepositoryWriteError, match='full|space'):
        for i in range(10_000_000):
            run.track(float(i), name='filler', context={'i': i % 500})
            if i % 50_000 == 0:
                run.flush()
    try:
        run.close()  # may succeed: folding the journal frees the space it took
    except RepositoryWriteError as e:
        assert 'full' in str(e) or 'space' in str(e)
    from aim.sdk import repo as repo_mod
    repo_mod._pool.clear()
    repo = Repo(small_mount, read_only=True)
    first = repo.get_run(kept.hash)
    assert first.get_metric('kept').values.values_list() == [1.0]


def test_import_aim_is_cheap():
    res = subprocess.run([PY, '-X', 'importtime', '-c', 'import aim'], capture_output=True,
                         text=True)
    modules = {line.split('|')[-1].strip() for line in res.stderr.splitlines()}
    for heavy in ('numpy', 'pandas', 'fastapi', 'uvicorn', 'torch', 'psutil'):
        assert heavy not in modules, f'import aim imports {heavy}'


@pytest.mark.parametrize('how', ['sigterm', 'sigint', 'exit'])
def test_run_is_finalised_on_exit_and_signals(repo_dir, how):
    # SIGINT raises KeyboardInterrupt even when these tests run as a background job,
    # which starts the child with SIGINT ignored
    code = f"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from aim import Run
run = Run(repo={repo_dir!r}, system_tracking_interval=None, capture_terminal_logs=False)
for i in range(1000):
    run.track(float(i), name='loss')
print(run.hash, flush=True)
if {how!r} == 'exit':
    sys.exit(0)
time.sleep(60)
"""
    proc = subprocess.Popen([PY, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    run_hash = proc.stdout.readline().strip()
    if how != 'exit':
        os.kill(proc.pid, signal.SIGTERM if how == 'sigterm' else signal.SIGINT)
    proc.wait(timeout=60)
    journal = os.path.join(repo_dir, '.aim', 'journal', run_hash)
    assert not os.path.exists(journal), 'the run was closed, not left for recovery'
    run = Repo(repo_dir).get_run(run_hash)
    assert run.active is False and run.end_time is not None
    assert run.get_metric('loss').count == 1000


FORK_WHILE_WRITING = '''
import os, sys, threading, time
from aim import Run
root = sys.argv[1]
run = Run(repo=root, system_tracking_interval=None, capture_terminal_logs=False)
stop = False
def train():
    i = 0
    while not stop:
        run.track(float(i), name='loss', step=i)
        i += 1
        if i % 200 == 0:
            run['hparams'] = {'i': i}   # a write transaction from this thread
threading.Thread(target=train, daemon=True).start()
time.sleep(0.2)
hung = 0
for attempt in range(8):
    pid = os.fork()
    if pid == 0:   # a DataLoader / multiprocessing(fork) worker making its own run
        child = Run(repo=root, experiment='child', system_tracking_interval=None,
                    capture_terminal_logs=False)
        child['worker'] = attempt
        child.track(1.0, name='x', step=0)
        child.close()
        os._exit(0)
    deadline = time.time() + 15
    while not os.waitpid(pid, os.WNOHANG)[0]:
        if time.time() > deadline:
            hung += 1
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            break
        time.sleep(0.01)
stop = True
run.close()
print('hung', hung)
'''


def test_forked_child_creates_its_own_run_while_a_parent_thread_writes(tmp_path, python,
                                                                       child_env):
    """Locks held by another thread of the parent at fork time (a flush, a params write)
    are never inherited as held: the child's own Run() must not wait on them forever."""
    import subprocess
    res = subprocess.run([python, '-c', FORK_WHILE_WRITING, str(tmp_path)],
                         capture_output=True, text=True, env=child_env, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-1] == '0', res.stdout
    from aim import Repo
    children = [r for r in Repo(str(tmp_path)).iter_runs() if r.experiment == 'child']
    assert len(children) == 8
