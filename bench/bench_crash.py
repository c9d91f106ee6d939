"""Kill loop: writers SIGKILLed at random moments never cost the repository or a point.

Each round starts one child process doing one thing to a repository (a new run tracking
points, resuming a run, closing it, deleting or copying a run, reindex, vacuum) and kills it
with SIGKILL after a random delay: during `Run()` creation, mid-track (journal segments of
256 records roll over thousands of times a second), during a fold, during `close()`. After
each kill a fresh opener opens the repository and checks that every point whose `track()`
returned (the child records each step after its `track()` returns) is there, once, with
its value; the next round resumes a run.

    python bench/bench_crash.py            # 200 kills
    python bench/bench_crash.py --quick    # 10 kills: proves the script works

tests/storage/test_kill_loop.py runs 30 kills of this loop in the test suite.

Prints the counts: kills, unopenable repositories, lost acknowledged points, duplicated
points, quarantined files. Exits 1 if a repository could not be opened or a point was lost.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPACITY = 256   # journal segment records: a roll-over every 256 points

CHILD = r'''
import os, sys
root, acks, op, run_hash, start = sys.argv[1:6]
start = int(start)
fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
from aim import Repo, Run
import numpy as np
if op == 'track':
    n = int(sys.argv[6])
    run = Run(run_hash=None if run_hash == '-' else run_hash, repo=root,
              system_tracking_interval=None, capture_terminal_logs=False)
    os.write(fd, b'h %s\n' % run.hash.encode())
    for i in range(start, start + n):
        run.track(i * 0.5, name='loss', step=i)
        if i % 7 == 0:
            run.track(i, name='acc', step=i, context={'k': i // 500})
        if i % 50 == 0:     # rich objects take the object journal
            from aim import Image, Text
            run.track(Text(str(i)), name='notes', step=i)
            if i % 200 == 0:
                run.track(Image(np.full((4, 4), i % 256, 'uint8'), caption=str(i)),
                          name='frames', step=i)
        os.write(fd, b'%d\n' % i)
    run.close()
    os.write(fd, b'closed\n')
elif op == 'delete':
    Repo(root).delete_run(run_hash)
elif op == 'copy':
    Repo(root).copy_runs([run_hash], root + '_copy')
elif op == 'reindex':
    Repo(root).reindex()
elif op == 'vacuum':
    from aim.storage.maintenance import vacuum_repository
    vacuum_repository(Repo(root)._store)
os.write(fd, b'done\n')
'''


def child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, env.get('PYTHONPATH')]))
    env['AIM_TEST_JOURNAL_CAPACITY'] = str(CAPACITY)
    env.update(extra)
    return env


def read_acks(path: str) -> tuple[str | None, int | None, set[str]]:
    """(run hash announced, last acknowledged step, markers) from a child's ack file."""
    run_hash, last, marks = None, None, set()
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        return None, None, marks
    for line in data.split(b'\n')[:-1]:   # a torn last line acknowledges nothing
        text = line.decode()
        if text.startswith('h '):
            run_hash = text[2:]
        elif text.isdigit():
            last = int(text)
        else:
            marks.add(text)
    return run_hash, last, marks


class Counts:
    def __init__(self):
        self.kills = self.unopenable = self.duplicated = self.quarantined = 0
        self.lost_points: set[tuple[str, str, int]] = set()   # (run, series, step)
        self.finished = 0   # children that ended before their kill
        self.ops: dict[str, int] = {}
        self.errors: list[str] = []

    @property
    def lost(self) -> int:
        return len(self.lost_points)


def verify(root: str, acked: dict[str, int], counts: Counts,
           only: set[str] | None = None) -> bool:
    """Open the repository as a fresh opener would and count lost and duplicated points
    (of the runs in ``only``, if given)."""
    import numpy as np

    from aim import Repo
    from aim.storage.repository import RepoStore
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            repo = Repo(root)
    except Exception as e:
        counts.unopenable += 1
        counts.errors.append(f'unopenable: {type(e).__name__}: {e}')
        return False
    dup = 0
    try:
        for run_hash, last in acked.items():
            if only is not None and run_hash not in only:
                continue
            run = repo.get_run(run_hash)
            if run is None:
                counts.lost_points.update((run_hash, 'loss', s) for s in range(last + 1))
                counts.errors.append(f'run {run_hash} is gone ({last + 1} points acknowledged)')
                continue
            want = np.arange(last + 1)
            for name, ctx_of, stride in (('loss', None, 1), ('acc', True, 7)):
                steps_want = want[want % stride == 0]
                got: dict[int, float] = {}
                for k in (sorted({int(s) // 500 for s in steps_want}) if ctx_of else [None]):
                    ctx = {'k': k} if ctx_of else {}
                    m = run.get_metric(name, ctx)
                    if m is None:
                        continue
                    st, vals = m.values.sparse_numpy()
                    got.update(zip(st.tolist(), vals.tolist()))
                expect = {int(s): (s * 0.5 if name == 'loss' else float(s)) for s in steps_want}
                missing = [s for s, v in expect.items() if got.get(s) != v]
                if missing:
                    counts.errors.append(f'run {run_hash} {name}: {len(missing)} acknowledged '
                                         f'points lost (first {missing[:3]})')
                counts.lost_points.update((run_hash, name, s) for s in missing)
            for name, getter, stride in (('notes', 'get_text_sequence', 50),
                                         ('frames', 'get_image_sequence', 200)):
                seq = getattr(run, getter)(name)
                got_objects = {} if seq is None else dict(seq.values.items())
                missing = []
                for s in range(0, last + 1, stride):
                    obj = got_objects.get(s)
                    value = None if obj is None else (obj.data if name == 'notes'
                                                      else obj.caption)
                    if value != str(s):
                        missing.append(s)
                if missing:
                    counts.errors.append(f'run {run_hash} {name}: {len(missing)} acknowledged '
                                         f'objects lost (first {missing[:3]})')
                counts.lost_points.update((run_hash, name, s) for s in missing)
        store: RepoStore = repo._store
        for count, first, last in store.db.query(
                'SELECT count, first_step, last_step FROM series'):
            if count and first is not None and count > last - first + 1:
                dup += count - (last - first + 1)
        qroot = os.path.join(root, '.aim', 'quarantine')
        counts.quarantined = sum(len([f for f in files if f != 'report.json'])
                                 for _, _, files in os.walk(qroot))
    finally:
        repo._store.close()
    counts.duplicated = max(counts.duplicated, dup)
    return True


def kill_loop(kills: int, seed: int = 0, workdir: str | None = None,
              max_delay_s: float = 1.2) -> Counts:
    rng = random.Random(seed)
    base = workdir or tempfile.mkdtemp(prefix='aim-crash-')
    root = os.path.join(base, 'repo')
    from aim import Repo
    Repo(root, init=True)._store.close()
    acks = os.path.join(base, 'acks')
    acked: dict[str, int] = {}          # run hash -> last acknowledged step
    finished: list[str] = []            # runs whose child closed them
    counts = Counts()
    env = child_env()
    while counts.kills < kills:
        op = rng.choices(['new', 'resume', 'delete', 'copy', 'reindex', 'vacuum'],
                         [30, 40, 8, 6, 8, 8])[0]
        if op in ('resume', 'delete', 'copy') and not acked:
            op = 'new'
        args: list[str]
        if op in ('new', 'resume'):
            run_hash = rng.choice(sorted(acked)) if op == 'resume' else '-'
            start = acked.get(run_hash, -1) + 1
            args = ['track', run_hash, str(start), str(rng.choice([500, 5000, 50000]))]
        elif op in ('delete', 'copy'):
            pool = finished or sorted(acked)
            run_hash = rng.choice(pool)
            args = [op, run_hash, '0']
            if op == 'delete':
                acked.pop(run_hash, None)   # gone or not, its points may go
                if run_hash in finished:
                    finished.remove(run_hash)
        else:
            args = [op, '-', '0']
        counts.ops[op] = counts.ops.get(op, 0) + 1
        if os.path.exists(acks):
            os.unlink(acks)
        proc = subprocess.Popen([sys.executable, '-c', CHILD, root, acks, *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # other operations are short: kill them soon after the interpreter has started
        delay = rng.uniform(0.05, max_delay_s) if args[0] == 'track' else rng.uniform(0.2, 0.8)
        try:
            proc.wait(timeout=delay)
            counts.finished += 1
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            counts.kills += 1
        err = proc.stderr.read().decode() if proc.stderr else ''
        if proc.stderr:
            proc.stderr.close()
        if proc.returncode not in (0, -signal.SIGKILL):
            counts.errors.append(f'{args[0]} child failed ({proc.returncode}): {err[-500:]}')
        run_hash, last, marks = read_acks(acks)
        if args[0] == 'track' and run_hash is not None:
            if last is not None or run_hash not in acked:
                acked[run_hash] = max(acked.get(run_hash, -1), -1 if last is None else last)
            if 'closed' in marks and run_hash not in finished:
                finished.append(run_hash)
        # a writer touched its own run; the other operations touch every run
        touched = {run_hash} if args[0] == 'track' and run_hash else None
        if not verify(root, acked, counts, touched):
            break
    else:
        verify(root, acked, counts)
    counts.runs = len(acked)  # type: ignore[attr-defined]
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='10 kills')
    parser.add_argument('--kills', type=int, default=None)
    parser.add_argument('--seed', type=int, default=1)
    opts = parser.parse_args()
    kills = opts.kills or (10 if opts.quick else 200)
    t0 = time.time()
    counts = kill_loop(kills, opts.seed)
    print(f'kills: {counts.kills} (and {counts.finished} children that finished first); '
          f'operations: {dict(sorted(counts.ops.items()))}')
    print(f'unopenable repositories: {counts.unopenable}')
    print(f'lost acknowledged points: {counts.lost}')
    print(f'duplicated points: {counts.duplicated}')
    print(f'quarantined files: {counts.quarantined}')
    print(f'wall time: {time.time() - t0:.0f} s')
    for e in counts.errors[:20]:
        print('  ', e)
    return 1 if counts.unopenable or counts.lost or counts.errors else 0


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    sys.exit(main())
