"""SIGTERM and SIGINT while a script tracks: the process exits promptly, the run is
closed, and every point the script saw acknowledged is stored. Real processes, real
signals; bench/bench_signals.py runs the same trials many more times."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import textwrap
import threading
import time

import pytest

from aim import Repo
from aim.errors import RunError

# The child tracks in a tight loop and records, after each acknowledged track(), the
# step it tracked: a fixed-width overwrite with one pwrite(), so the file always holds
# a whole number.
CHILD = textwrap.dedent('''
    import os, signal, sys
    from aim import Run
    repo, ack_path, style = sys.argv[1], sys.argv[2], sys.argv[3]
    if style == 'slowfold':  # each background flush holds the flush lock for 0.3 s
        import time
        from aim.storage.repository import LiveRun
        fold = LiveRun._commit_flush
        def slow_fold(self, batch):
            time.sleep(0.3)
            return fold(self, batch)
        LiveRun._commit_flush = slow_fold
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.1}
    fd = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    print(run.hash, signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True)
    step = 0
    while True:
        if style == 'swallow':           # a script that catches everything and goes on
            try:
                run.track(float(step), name='loss', step=step, context={'subset': 'train'})
            except BaseException:
                continue
        else:
            run.track(float(step), name='loss', step=step, context={'subset': 'train'})
            run.track(step, name='count', step=step, epoch=step // 100)
        os.pwrite(fd, b'%20d' % step, 0)
        if style == 'flush' and step % 200 == 0:
            run.flush()                  # the main thread inside the flush lock and SQLite
        if style == 'params' and step % 200 == 0:
            run['last'] = step           # the main thread inside a params write
        step += 1
''')

# Start the child with SIGINT ignored, as a shell starts a background job: the ignored
# disposition survives exec, so Python (and aimkit) must leave it alone.
SET_SIGINT_THEN_EXEC = ('import os, signal, sys; signal.signal(signal.SIGINT, signal.{}); '
                        'os.execv(sys.executable, [sys.executable] + sys.argv[1:])')


@pytest.fixture
def child_script(tmp_path):
    path = tmp_path / 'child.py'
    path.write_text(CHILD)
    return str(path)


def start_child(python, child_env, script, repo_dir, ack_path, style='plain', *,
                sigint_ignored=False):
    argv = [python, script, repo_dir, ack_path, style]
    if sigint_ignored:
        argv = [python, '-c', SET_SIGINT_THEN_EXEC.format('SIG_IGN')] + argv[1:]
    elif signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # the tests themselves run as a background job: give the child the default
        # disposition (KeyboardInterrupt) that a script started from a terminal has
        argv = [python, '-c', SET_SIGINT_THEN_EXEC.format('SIG_DFL')] + argv[1:]
    proc = subprocess.Popen(argv, env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline().split()
    assert first, f'the child did not start: {proc.stderr.read()}'
    return proc, first[0], first[1] == 'True'


def wait_for_ack(ack_path: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(ack_path) and os.path.getsize(ack_path) == 20:
            return
        time.sleep(0.01)
    raise AssertionError('the child never acknowledged a point')


def last_ack(ack_path: str) -> int:
    with open(ack_path, 'rb') as f:
        return int(f.read())


def check_closed_and_complete(repo_dir: str, run_hash: str, acked: int) -> None:
    journal = os.path.join(repo_dir, '.aim', 'journal', run_hash)
    assert not os.path.exists(journal), 'the run was left for recovery instead of closed'
    run = Repo(repo_dir).get_run(run_hash)
    assert run.active is False and run.end_time is not None
    assert run['hparams'] == {'lr': 0.1}
    steps = run.get_metric('loss', {'subset': 'train'}).values.sparse_numpy()[0]
    assert len(steps) >= acked + 1 and list(steps[:acked + 1]) == list(range(acked + 1)), \
        f'acknowledged step {acked} but stored {len(steps)} steps'


def signal_and_wait(proc, signum: int, ack_path: str) -> tuple[float, int]:
    os.kill(proc.pid, signum)
    t0 = time.perf_counter()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f'the process did not exit after signal {signum}') from None
    return time.perf_counter() - t0, last_ack(ack_path)


TRIALS = [('sigterm', style, k) for k, style in enumerate(
    ['plain', 'plain', 'plain', 'plain', 'flush', 'flush', 'params', 'params', 'swallow',
     'swallow'])] + [('sigint', style, k) for k, style in enumerate(
         ['plain', 'plain', 'plain', 'plain', 'plain', 'flush', 'flush', 'flush', 'params',
          'params'])] + [(how, 'slowfold', k) for how in ('sigterm', 'sigint') for k in (0, 1)]


@pytest.mark.parametrize('how, style, k', TRIALS)
def test_signal_while_tracking_closes_the_run_and_keeps_every_acknowledged_point(
        repo_dir, child_env, python, child_script, tmp_path, how, style, k):
    ack_path = str(tmp_path / 'ack')
    # the child starts with SIGINT at its default (KeyboardInterrupt), whatever ours is
    proc, run_hash, _ = start_child(python, child_env, child_script, repo_dir, ack_path,
                                    style)
    wait_for_ack(ack_path)
    time.sleep(random.Random(k).uniform(0.02, 0.6))
    signum = signal.SIGTERM if how == 'sigterm' else signal.SIGINT
    took, acked = signal_and_wait(proc, signum, ack_path)
    assert proc.returncode == -signum, proc.stderr.read()[-2000:]
    assert took < 3, f'exit took {took:.2f} s after the signal'
    check_closed_and_complete(repo_dir, run_hash, acked)


def test_sigterm_from_timeout_like_slurm(repo_dir, child_env, python, child_script, tmp_path):
    ack_path = str(tmp_path / 'ack')
    t0 = time.perf_counter()
    proc = subprocess.Popen(['timeout', '--preserve-status', '-s', 'TERM', '2', python,
                             child_script, repo_dir, ack_path, 'plain'], env=child_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_hash = proc.stdout.readline().split()[0]
    try:
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    took = time.perf_counter() - t0
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()[-2000:]
    assert took < 2 + 3, f'timeout 2 took {took:.2f} s in all'
    check_closed_and_complete(repo_dir, run_hash, last_ack(ack_path))


def test_inherited_ignored_sigint_is_left_alone(repo_dir, child_env, python, child_script,
                                                tmp_path):
    ack_path = str(tmp_path / 'ack')
    proc, run_hash, ignored = start_child(python, child_env, child_script, repo_dir, ack_path,
                                          sigint_ignored=True)
    assert ignored, 'aimkit replaced the SIGINT disposition the process inherited'
    wait_for_ack(ack_path)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None, 'an ignored SIGINT stopped the process'
    before = last_ack(ack_path)
    time.sleep(0.2)
    assert last_ack(ack_path) > before, 'tracking stopped after an ignored SIGINT'
    took, acked = signal_and_wait(proc, signal.SIGTERM, ack_path)
    assert proc.returncode == -signal.SIGTERM and took < 3
    check_closed_and_complete(repo_dir, run_hash, acked)


def test_script_with_its_own_sigterm_handler_keeps_it(repo_dir, child_env, python, tmp_path):
    code = textwrap.dedent(f'''
        import signal, sys
        from aim import Run
        def mine(signum, frame):
            print('handled', flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, mine)
        run = Run(repo={repo_dir!r}, system_tracking_interval=None, capture_terminal_logs=False)
        print(run.hash, signal.getsignal(signal.SIGTERM) is mine, flush=True)
        step = 0
        while True:
            run.track(float(step), name='loss', step=step)
            step += 1
    ''')
    proc = subprocess.Popen([python, '-c', code], env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run_hash, kept = proc.stdout.readline().split()
    assert kept == 'True'
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 3 and 'handled' in out, err[-2000:]
    # sys.exit unwinds to atexit, which closes (looked at before a Repo would recover it)
    assert not os.path.exists(os.path.join(repo_dir, '.aim', 'journal', run_hash))
    run = Repo(repo_dir).get_run(run_hash)
    assert run.active is False and run.end_time is not None


def test_track_after_close_raises_a_clear_error(make_run):
    run = make_run()
    track = run.track            # a bound track() kept past close(), as adapters do
    track(1.0, name='loss', step=0)
    run.close()
    with pytest.raises(RunError, match='closed'):
        track(2.0, name='loss', step=1)
    with pytest.raises(RunError, match='closed'):
        run.track(2.0, name='loss', step=1)
    # a new series too: its announcement must not go to the closed journal's descriptor,
    # which the process may have reused for another file
    reused = os.open(os.devnull, os.O_WRONLY)
    try:
        with pytest.raises(RunError, match='closed'):
            track(2.0, name='new-series', context={'k': 1})
    finally:
        os.close(reused)
    assert Repo(run.repo.path).get_run(run.hash).get_metric('loss').values.values_list() == [
        1.0]


def test_close_while_another_thread_tracks_keeps_every_acknowledged_point(make_run):
    run = make_run()
    track = run.track
    acked = []
    errors = []

    def loop():
        step = 0
        while True:
            try:
                track(float(step), name='loss', step=step)
            except RunError:
                return
            except BaseException as e:  # anything else is a defect
                errors.append(e)
                return
            acked.append(step)
            step += 1

    thread = threading.Thread(target=loop)
    thread.start()
    time.sleep(0.3)
    run.close()
    thread.join(10)
    assert not thread.is_alive() and not errors, errors
    steps = Repo(run.repo.path).get_run(run.hash).get_metric('loss').values.sparse_numpy()[0]
    assert list(steps) == acked, (len(steps), len(acked))


def test_close_from_two_threads_at_once(make_run):
    for _ in range(20):
        run = make_run()
        for i in range(100):
            run.track(float(i), name='loss', step=i)
        barrier = threading.Barrier(3)
        errors = []

        threads = [threading.Thread(target=_close_at_barrier, args=(run, barrier, errors))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not errors, errors
        stored = Repo(run.repo.path).get_run(run.hash)
        assert stored.active is False and stored.get_metric('loss').count == 100


def _close_at_barrier(run, barrier, errors) -> None:
    barrier.wait()
    try:
        run.close()
    except BaseException as e:
        errors.append(e)


def test_a_run_made_in_a_thread_first_still_gets_sigterm_handled(repo_dir, child_env, python):
    code = textwrap.dedent(f'''
        import os, signal, threading
        from aim import Run
        kw = dict(repo={repo_dir!r}, system_tracking_interval=None, capture_terminal_logs=False)
        runs = []
        t = threading.Thread(target=lambda: runs.append(Run(**kw)))
        t.start(); t.join()
        main = Run(**kw)
        print(runs[0].hash, main.hash, flush=True)
        step = 0
        while True:
            runs[0].track(float(step), name='loss', step=step)
            main.track(float(step), name='loss', step=step)
            step += 1
    ''')
    proc = subprocess.Popen([python, '-c', code], env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    hashes = proc.stdout.readline().split()
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGTERM, proc.stderr.read()[-2000:]
    for run_hash in hashes:  # looked at before a Repo opens, which would recover them
        assert not os.path.exists(os.path.join(repo_dir, '.aim', 'journal', run_hash)), \
            'the run was left for recovery instead of closed'
    repo = Repo(repo_dir)
    for run_hash in hashes:
        run = repo.get_run(run_hash)
        assert run.active is False and run.end_time is not None
