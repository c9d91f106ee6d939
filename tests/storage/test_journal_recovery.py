"""Crash recovery of damaged journals: every readable point kept, the rest quarantined,
other runs untouched, `aim storage check` naming the run (see docs/storage.md)."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from aim import Repo
from aim.errors import RepositoryDatabaseMissingError

CAPACITY = 1024   # three segments: 1024, 1024 and 952 records
N_LOSS = 2000

# the dead writer: 'loss' (float, every step) and 'acc' (int, every other record), killed
# before its flusher ever ran, so every point is only in the journal
VICTIM = '''
import os, signal, sys
from aim.storage import writer
writer.FlushService._loop = lambda self: None   # keep every point in the journal
from aim import Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
print(run.hash, flush=True)
for i in range(N_LOSS):
    run.track(i * 0.5, name='loss', step=i)
    if i % 2 == 0:
        run.track(i // 2, name='acc', step=i // 2, context={'subset': 'val'})
os.kill(os.getpid(), signal.SIGKILL)
'''.replace('N_LOSS', str(N_LOSS))


def records():
    """The victim's records in journal order: (series, step, value)."""
    out = []
    for i in range(N_LOSS):
        out.append(('loss', i, i * 0.5))
        if i % 2 == 0:
            out.append(('acc', i // 2, i // 2))
    return out


def make_repo(tmp_path, python, child_env):
    """A repository with a closed run ('other') and a dead writer's journal ('victim')."""
    from aim import Run
    root = str(tmp_path / 'repo')
    repo = Repo(root, init=True)
    other = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    other['hparams'] = {'lr': 0.1}
    for i in range(500):
        other.track(float(i), name='loss', step=i)
    other.close()
    other_points = points(root, other.hash)
    env = dict(child_env, AIM_TEST_JOURNAL_CAPACITY=str(CAPACITY))
    res = subprocess.run([python, '-c', VICTIM, root], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == -9, res.stderr
    victim = res.stdout.split()[0]
    jdir = os.path.join(root, '.aim', 'journal', victim)
    assert sorted(os.listdir(jdir)) == ['00000000.seg', '00000001.seg', '00000002.seg',
                                        'series.jsonl']
    return root, (other.hash, other_points), victim, jdir


def points(root, run_hash):
    """{(series name, context key): {step: value}} of a run, read by a fresh opener."""
    repo = Repo(root)
    run = repo.get_run(run_hash)
    assert run is not None
    out = {}
    for m in run.metrics():
        steps, vals = m.values.sparse_numpy() if hasattr(m.values, 'sparse_numpy') else \
            m.sparse_numpy()
        out[(m.name, tuple(sorted(m.context.to_dict().items())))] = dict(
            zip(steps.tolist(), vals.tolist()))
    return out


def expected(keep):
    """Points of the victim's records whose index satisfies keep(i)."""
    out = {}
    for i, (name, step, value) in enumerate(records()):
        if keep(i):
            key = (name, (('subset', 'val'),) if name == 'acc' else ())
            out.setdefault(key, {})[step] = value
    return out


def check(root):
    from aim.cli.main import cli
    return CliRunner().invoke(cli, ['storage', 'check', '--repo', root])


def quarantined(root, victim):
    qdir = os.path.join(root, '.aim', 'quarantine', victim)
    if not os.path.isdir(qdir):
        return []
    return sorted(f for stamp in os.listdir(qdir) for f in os.listdir(os.path.join(qdir, stamp)))


def seg(jdir, n):
    return os.path.join(jdir, f'{n:08d}.seg')


def put_header(path, slot, value):
    with open(path, 'r+b') as f:
        f.seek(8 * slot)
        f.write(struct.pack('<q', value))


def truncate_to(size):
    def damage(jdir):
        with open(seg(jdir, 1), 'r+b') as f:
            f.truncate(size(os.path.getsize(seg(jdir, 1))))
    return damage


def flip_header(jdir):
    with open(seg(jdir, 1), 'r+b') as f:
        head = bytearray(f.read(16))
        f.seek(0)
        f.write(bytes(b ^ 0x5A for b in head))   # magic and capacity


def garbage_series_line(jdir):
    path = os.path.join(jdir, 'series.jsonl')
    lines = open(path).read().splitlines(keepends=True)
    with open(path, 'w') as f:
        f.write(lines[0] + '{"id": 7, "na\x00me": garbage\n' + ''.join(lines[1:]))


def drop_series_line(jdir):
    path = os.path.join(jdir, 'series.jsonl')
    lines = open(path).read().splitlines(keepends=True)
    with open(path, 'w') as f:
        f.write(''.join(line for line in lines if '"acc"' not in line))


def stray_seg(jdir):
    with open(os.path.join(jdir, 'junk.seg'), 'wb') as f:
        f.write(np.random.default_rng(0).bytes(50_000))


def zero_seg(jdir):
    open(seg(jdir, 3), 'wb').close()


def in_seg1(i):
    return CAPACITY <= i < 2 * CAPACITY


# name -> (damage, records kept, series the points land in instead, files quarantined)
CASES = {
    'truncated_100_bytes': (truncate_to(lambda s: 100), lambda i: not in_seg1(i), None,
                            ['00000001.seg']),
    # the code, step and first part of the value column survive: 764 records of segment 1
    'truncated_half': (truncate_to(lambda s: s // 2),
                       lambda i: i < CAPACITY + 764 or i >= 2 * CAPACITY, None,
                       ['00000001.seg']),
    'flipped_header': (flip_header, lambda i: True, None, ['00000001.seg']),
    'committed_over_capacity': (lambda j: put_header(seg(j, 1), 2, CAPACITY + 5000),
                                lambda i: True, None, ['00000001.seg']),
    'negative_committed': (lambda j: put_header(seg(j, 1), 2, -3), lambda i: True, None,
                           ['00000001.seg']),
    'capacity_over_file_size': (lambda j: put_header(seg(j, 1), 1, 1 << 20), lambda i: True,
                                None, ['00000001.seg']),
    'garbage_series_line': (garbage_series_line, lambda i: True, None, ['series.jsonl']),
    'series_file_deleted': (lambda j: os.unlink(os.path.join(j, 'series.jsonl')),
                            lambda i: True, {'loss': '__unknown_series_0',
                                             'acc': '__unknown_series_1'},
                            ['00000000.seg', '00000001.seg', '00000002.seg']),
    'unknown_series_code': (drop_series_line, lambda i: True, {'acc': '__unknown_series_1'},
                            ['00000000.seg', '00000001.seg', '00000002.seg', 'series.jsonl']),
    'stray_garbage_seg': (stray_seg, lambda i: True, None, ['junk.seg']),
    'zero_byte_seg': (zero_seg, lambda i: True, None, ['00000003.seg']),
}


def renamed(points_by_key, names):
    if not names:
        return points_by_key
    out = {}
    for (name, ctx), pts in points_by_key.items():
        out[(names[name], ()) if name in names else (name, ctx)] = pts
    return out


@pytest.mark.parametrize('case', sorted(CASES))
def test_damaged_journal_keeps_every_readable_point(case, tmp_path, python, child_env):
    damage, keep, names, files = CASES[case]
    root, (other, other_points), victim, jdir = make_repo(tmp_path, python, child_env)
    damage(jdir)

    before = check(root)
    assert before.exit_code == 1, before.output
    assert victim in before.output

    with pytest.warns(RuntimeWarning, match=victim):
        Repo(root)  # opens, recovers what it can
    assert not os.path.exists(jdir)
    assert points(root, other) == other_points
    want = renamed(expected(keep), names)
    got = points(root, victim)
    assert got == want
    assert quarantined(root, victim) == sorted(files + ['report.json'])

    after = check(root)
    assert after.exit_code == 1, after.output
    assert victim in after.output and 'quarantine' in after.output
    assert points(root, victim) == got   # a second open loses nothing more


def test_deleted_locks_folder_still_recovers(tmp_path, python, child_env):
    root, other, victim, jdir = make_repo(tmp_path, python, child_env)
    shutil.rmtree(os.path.join(root, '.aim', 'locks'))
    Repo(root)
    assert not os.path.exists(jdir)
    assert points(root, victim) == expected(lambda i: True)
    assert os.path.exists(os.path.join(root, '.aim', 'locks', f'{victim}.lock'))
    assert check(root).exit_code == 0


@pytest.mark.parametrize('how', ['deleted', 'emptied'])
def test_lost_database_is_an_error_and_journals_stay(how, tmp_path, python, child_env):
    root, other, victim, jdir = make_repo(tmp_path, python, child_env)
    db = os.path.join(root, '.aim', 'repo.db')
    os.unlink(db)   # its -wal and -shm files stay
    if how == 'emptied':
        open(db, 'wb').close()
    with pytest.raises(RepositoryDatabaseMissingError, match='repo.db') as err:
        Repo(root)
    assert victim in str(err.value) and 'init=True' in str(err.value)
    res = check(root)
    assert res.exit_code == 1 and 'repo.db' in res.output
    from aim.storage.repository import RepoStore
    with pytest.raises(RepositoryDatabaseMissingError):
        RepoStore(root).reindex()
    assert len(os.listdir(jdir)) == 4   # nothing replaced the database, nothing deleted
    # the documented way on: a new database that keeps the journal's points
    with pytest.warns(RuntimeWarning, match='missing from the database'):
        Repo(root, init=True)
    assert points(root, victim) == expected(lambda i: True)
    assert not os.path.exists(jdir)
    assert not os.path.exists(db + '-wal') or os.path.getsize(db + '-wal') < 1 << 20


def test_fresh_folder_still_initialises(tmp_path):
    Repo(str(tmp_path / 'a'), init=True)
    os.makedirs(tmp_path / 'b' / '.aim' / 'journal')  # an init killed before the database
    Repo(str(tmp_path / 'b'), init=True)
    Repo(str(tmp_path / 'b'))


def test_leftover_headerless_segment_does_not_block(tmp_path, python, child_env):
    """A kill while a segment was created used to leave a zero-filled `.seg` file without
    its header, and every later open failed."""
    root, other, victim, jdir = make_repo(tmp_path, python, child_env)
    with open(seg(jdir, 3), 'wb') as f:
        f.truncate(70_000)
    with open(os.path.join(jdir, '00000004.seg.tmp'), 'wb') as f:
        f.truncate(70_000)
    with pytest.warns(RuntimeWarning):
        repo = Repo(root)
    assert points(root, victim) == expected(lambda i: True)
    from aim import Run
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    run.track(1.0, name='x')
    run.close()
    from aim.storage.maintenance import vacuum_repository
    vacuum_repository(repo._store)
    repo.reindex()


@pytest.mark.parametrize('point', ['recovery.segment_committed:2',
                                   'recovery.committed_before_removal'])
def test_recovery_is_repeatable_after_a_kill(point, tmp_path, python, child_env):
    root, other, victim, jdir = make_repo(tmp_path, python, child_env)
    code = textwrap.dedent('''
        import sys
        from aim import Repo
        Repo(sys.argv[1])
    ''')
    env = dict(child_env, AIM_TEST_FAULT_POINT=point)
    res = subprocess.run([python, '-c', code, root], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == -9, res.stderr
    assert os.path.isdir(jdir)
    Repo(root)
    assert points(root, victim) == expected(lambda i: True)
    assert not os.path.exists(jdir)


def test_deleted_locks_folder_does_not_fold_a_live_writer(tmp_path, python, child_env):
    """With locks/ gone, the run lock proves nothing: a live writer's journal must still
    not be taken for a dead one."""
    root = str(tmp_path / 'repo')
    Repo(root, init=True)
    code = textwrap.dedent('''
        import sys, time
        from aim import Run
        run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
        print(run.hash, flush=True)
        for i in range(3000):
            run.track(float(i), name='loss', step=i)
            if i == 1000:
                print('go', flush=True)
                sys.stdin.readline()
        run.close()
    ''')
    proc = subprocess.Popen([python, '-c', code, root], env=child_env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    run_hash = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == 'go'
    shutil.rmtree(os.path.join(root, '.aim', 'locks'))
    Repo(root)   # must leave the live journal alone
    assert os.path.isdir(os.path.join(root, '.aim', 'journal', run_hash))
    assert check(root).exit_code == 0
    from aim import Run
    from aim.errors import RunLockedError
    with pytest.raises(RunLockedError):
        Run(run_hash=run_hash, repo=root, system_tracking_interval=None,
            capture_terminal_logs=False)
    assert os.path.isdir(os.path.join(root, '.aim', 'journal', run_hash))
    proc.stdin.write('\n')
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    steps, _ = Repo(root).get_run(run_hash).get_metric('loss', {}).values.sparse_numpy()
    assert steps.tolist() == list(range(3000))


def test_vacuum_leaves_alone_a_journal_that_still_holds_points(tmp_path, python, child_env):
    """The leftovers that vacuum removes never include a journal with records in it: when
    recovery could not fold a run's journal (its run is missing from the database), that
    journal is the only copy of the run's points."""
    import sqlite3

    from aim.storage.maintenance import _remove_leftovers
    from aim.storage.repository import RepoStore
    root, _, victim, jdir = make_repo(tmp_path, python, child_env)
    conn = sqlite3.connect(os.path.join(root, '.aim', 'repo.db'))
    with conn:  # the run is unknown to the database, as after a failed recovery
        conn.execute('DELETE FROM run_props WHERE run_hash=?', (victim,))
        conn.execute('DELETE FROM runs WHERE hash=?', (victim,))
    conn.close()
    store = RepoStore(root, readonly=True)  # no recovery on open
    try:
        _remove_leftovers(store)
    finally:
        store.close()
    assert sorted(os.listdir(jdir)) == ['00000000.seg', '00000001.seg', '00000002.seg',
                                        'series.jsonl']


def test_check_of_a_lost_database_says_how_to_rebuild_it(tmp_path, python, child_env):
    root, _, victim, _ = make_repo(tmp_path, python, child_env)
    from aim.cli.main import cli
    os.unlink(os.path.join(root, '.aim', 'repo.db'))
    result = CliRunner().invoke(cli, ['storage', 'check', '--repo', root])
    assert result.exit_code != 0
    assert 'init=True' in result.output and '.recover' not in result.output


def test_vacuum_never_removes_a_folder_under_journal_that_is_not_a_run_journal(tmp_path):
    """Vacuum removes the empty journal folders that runs leave, never anything else
    someone put under .aim/journal (a folder of notes, a folder with a run-like name)."""
    from click.testing import CliRunner

    from aim.cli.main import cli
    root = tmp_path / 'repo'
    Repo(str(root), init=True)
    journal = root / '.aim' / 'journal'
    for name in (' a b ', 'notes', '0123456789abcdef01234567'):
        folder = journal / name
        folder.mkdir(parents=True)
        (folder / 'keep.txt').write_text('precious')
    empty = journal / 'fedcba9876543210fedcba98'
    empty.mkdir()
    (empty / 'series.jsonl').write_text('')
    result = CliRunner().invoke(cli, ['storage', 'vacuum', '--repo', str(root)])
    assert result.exit_code == 0, result.output
    for name in (' a b ', 'notes', '0123456789abcdef01234567'):
        assert (journal / name / 'keep.txt').read_text() == 'precious'
    assert not empty.exists()
