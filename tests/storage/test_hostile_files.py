"""Recovery and check against hostile file-system states under ``.aim``: lock paths that are
not lock files, links that point outside the repository, folders under ``journal/`` that
are not run journals, and readers that cannot write (see docs/storage.md)."""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import pytest
from click.testing import CliRunner

from aim import Repo

N = 300

# a writer killed before its flusher ran: every point is only in its journal
VICTIM = '''
import os, signal, sys
from aim.storage import writer
writer.FlushService._loop = lambda self: None
from aim import Run
run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=False)
run['hparams'] = {'lr': 0.1}
print(run.hash, flush=True)
for i in range(N):
    run.track(float(i), name='loss', step=i)
os.kill(os.getpid(), signal.SIGKILL)
'''.replace('N)', f'{N})')


def crashed_run(tmp_path, python, child_env):
    root = str(tmp_path / 'repo')
    Repo(root, init=True)
    res = subprocess.run([python, '-c', VICTIM, root], capture_output=True, text=True,
                         env=child_env, timeout=120)
    assert res.returncode == -9, res.stderr
    victim = res.stdout.split()[0]
    aim_dir = os.path.join(root, '.aim')
    assert os.listdir(os.path.join(aim_dir, 'journal')) == [victim]
    return root, aim_dir, victim


def visible(root, run_hash):
    """How many 'loss' points a fresh opener sees."""
    run = Repo(root).get_run(run_hash)
    if run is None:
        return None
    m = run.get_metric('loss', {})
    return 0 if m is None else len(m.values.sparse_numpy()[0])


def check(root):
    from aim.cli.main import cli
    return CliRunner().invoke(cli, ['storage', 'check', '--repo', root])


def quarantine_files(aim_dir, name):
    qdir = os.path.join(aim_dir, 'quarantine', name)
    if not os.path.isdir(qdir):
        return []
    return sorted(f for stamp in os.listdir(qdir) for f in os.listdir(os.path.join(qdir, stamp)))


def open_quietly(root):
    """Open for writing; returns the warnings it gave."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter('always')
        Repo(root)
    return [str(w.message) for w in got]


# -- lock paths that are not lock files ----------------------------------------------------------
@pytest.mark.parametrize('kind', ['directory', 'devnull_link', 'outside_link', 'dangling_link'])
def test_lock_path_that_is_not_a_lock_file(kind, tmp_path, python, child_env):
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    lock = os.path.join(aim_dir, 'locks', f'{victim}.lock')
    outside = tmp_path / 'notes.txt'
    outside.write_text('precious data')
    os.unlink(lock)
    if kind == 'directory':
        os.mkdir(lock)
        open(os.path.join(lock, 'inside'), 'w').close()
    else:
        os.symlink({'devnull_link': '/dev/null', 'outside_link': str(outside),
                    'dangling_link': str(tmp_path / 'nothing')}[kind], lock)

    before = check(root)
    assert before.exit_code == 1, before.output
    assert victim in before.output and 'lock' in before.output
    assert 'intact' not in before.output.splitlines()[-1]

    got = open_quietly(root)
    assert not [w for w in got if 'could not recover' in w], got
    assert visible(root, victim) == N
    assert not os.path.exists(os.path.join(aim_dir, 'journal', victim))
    assert os.path.isfile(lock) and not os.path.islink(lock)
    assert outside.read_text() == 'precious data'   # never written through the link
    assert f'{victim}.lock' in quarantine_files(aim_dir, victim)
    if kind == 'directory':   # moved as it is, contents and all
        qdir = os.path.join(aim_dir, 'quarantine', victim)
        (stamp,) = os.listdir(qdir)
        assert os.listdir(os.path.join(qdir, stamp, f'{victim}.lock')) == ['inside']


def test_run_refuses_a_lock_link_without_writing_through_it(tmp_path):
    """A new Run whose lock path is a link: a clear error, the named file untouched."""
    from aim import Run
    root = str(tmp_path / 'repo')
    Repo(root, init=True)
    outside = tmp_path / 'notes.txt'
    outside.write_text('precious data')
    os.symlink(str(outside), os.path.join(root, '.aim', 'locks', 'myrun.lock'))
    from aim.errors import AimError
    with pytest.raises(AimError, match='symbolic link'):
        Run(run_hash='myrun', repo=root, system_tracking_interval=None,
            capture_terminal_logs=False)
    assert outside.read_text() == 'precious data'


@pytest.mark.parametrize('sub', ['locks', 'journal', 'quarantine'])
def test_repository_folder_replaced_by_a_file(sub, tmp_path, python, child_env):
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    path = os.path.join(aim_dir, sub)
    if sub == 'journal':   # keep the journal aside; the folder itself becomes a file
        os.rename(path, str(tmp_path / 'journal-kept'))
    else:
        shutil.rmtree(path, ignore_errors=True)
    with open(path, 'w') as f:
        f.write('not a folder')

    before = check(root)
    assert before.exit_code == 1, before.output
    assert f'{path} is a file, not a folder' in before.output

    from aim import Run
    run = Run(repo=root, system_tracking_interval=None, capture_terminal_logs=False)
    run.track(1.0, name='loss', step=0)
    run.close()
    assert os.path.isdir(path)
    if sub != 'journal':
        assert visible(root, victim) == N
    moved = os.path.join(aim_dir, 'quarantine', '_repository')
    (stamp,) = os.listdir(moved)
    with open(os.path.join(moved, stamp, sub)) as f:
        assert f.read() == 'not a folder'   # kept as it was


def test_damaged_journal_recovers_when_quarantine_is_a_file(tmp_path, python, child_env):
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    with open(os.path.join(aim_dir, 'journal', victim, 'stray.txt'), 'w') as f:
        f.write('x')
    shutil.rmtree(os.path.join(aim_dir, 'quarantine'), ignore_errors=True)
    with open(os.path.join(aim_dir, 'quarantine'), 'w') as f:
        f.write('not a folder')
    got = open_quietly(root)
    assert not [w for w in got if 'could not recover' in w], got
    assert visible(root, victim) == N
    assert 'stray.txt' in quarantine_files(aim_dir, victim)


# -- links under journal/ --------------------------------------------------------------------------
def test_journal_link_to_an_outside_folder_is_left_alone(tmp_path, python, child_env):
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    jdir = os.path.join(aim_dir, 'journal', victim)
    outside = tmp_path / 'outside'
    shutil.move(jdir, str(outside))
    (outside / 'notes.txt').write_text('precious data')
    os.symlink(str(outside), jdir)
    before = sorted(os.listdir(outside))

    res = check(root)
    assert res.exit_code == 1 and 'symbolic link' in res.output, res.output
    open_quietly(root)
    assert sorted(os.listdir(outside)) == before   # nothing deleted or moved out of it
    assert (outside / 'notes.txt').read_text() == 'precious data'
    assert os.path.islink(jdir)
    assert not os.path.exists(os.path.join(aim_dir, 'quarantine', victim))


def test_resuming_a_run_whose_journal_is_a_link(tmp_path, python, child_env):
    """Run(run_hash=...) folds the journal itself: a link there is refused, not followed."""
    from aim import Run
    from aim.errors import AimError
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    jdir = os.path.join(aim_dir, 'journal', victim)
    outside = tmp_path / 'outside'
    shutil.move(jdir, str(outside))
    os.symlink(str(outside), jdir)
    before = sorted(os.listdir(outside))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(AimError, match='symbolic link'):
            Run(run_hash=victim, repo=root, system_tracking_interval=None,
                capture_terminal_logs=False)
    assert sorted(os.listdir(outside)) == before


def test_new_run_never_writes_through_a_journal_link(tmp_path):
    from aim import Run
    from aim.errors import AimError
    root = str(tmp_path / 'repo')
    Repo(root, init=True)
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.symlink(str(outside), os.path.join(root, '.aim', 'journal', 'myrun'))
    with pytest.raises(AimError, match='symbolic link'):
        run = Run(run_hash='myrun', repo=root, system_tracking_interval=None,
                  capture_terminal_logs=False)
        run.track(1.0, name='loss', step=0)
        run.close()
    assert os.listdir(outside) == []


def test_links_inside_a_journal_are_never_followed(tmp_path, python, child_env):
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    jdir = os.path.join(aim_dir, 'journal', victim)
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'notes.txt').write_text('precious data')
    segs = sorted(n for n in os.listdir(jdir) if n.endswith('.seg'))
    # a segment placed outside and linked in: its file is not the journal's to delete
    shutil.move(os.path.join(jdir, segs[0]), str(outside / segs[0]))
    os.symlink(str(outside / segs[0]), os.path.join(jdir, segs[0]))
    os.symlink(str(outside / 'notes.txt'), os.path.join(jdir, 'notes.txt'))
    seg_bytes = (outside / segs[0]).read_bytes()

    res = check(root)
    assert res.exit_code == 1 and 'symbolic links, not followed' in res.output, res.output
    open_quietly(root)
    assert (outside / segs[0]).read_bytes() == seg_bytes
    assert (outside / 'notes.txt').read_text() == 'precious data'
    assert sorted(quarantine_files(aim_dir, victim)) == sorted([segs[0], 'notes.txt',
                                                                'report.json'])


# -- folders under journal/ that are not run journals ----------------------------------------------
def test_folders_that_are_not_run_journals(tmp_path, python, child_env):
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    jroot = os.path.join(aim_dir, 'journal')
    odd = ['<img src=x onerror=alert(1)>', ' a b ', '-rf', f'{victim}.bak']
    for name in odd:
        shutil.copytree(os.path.join(jroot, victim), os.path.join(jroot, name))

    res = check(root)
    assert res.exit_code == 1
    for name in odd:
        assert f'journal/{name!r}' in res.output and 'not a run journal' in res.output
    assert 'missing from the database' not in res.output

    open_quietly(root)
    assert Repo(root).list_all_runs() == [victim]
    assert visible(root, victim) == N
    assert sorted(os.listdir(jroot)) == sorted(odd)   # left as they are
    for name in odd:
        assert len(os.listdir(os.path.join(jroot, name))) >= 2


def test_journal_of_a_run_missing_from_the_database_is_still_recovered(tmp_path, python,
                                                                       child_env):
    """A valid name whose run the database lost (no copy of another): rebuilt from it."""
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    jroot = os.path.join(aim_dir, 'journal')
    shutil.copytree(os.path.join(jroot, victim), os.path.join(jroot, 'other.run'))
    with pytest.warns(RuntimeWarning, match='missing from the database'):
        Repo(root)
    assert sorted(Repo(root).list_all_runs()) == sorted([victim, 'other.run'])


# -- readers that cannot write ---------------------------------------------------------------------
def test_read_only_open_warns_of_unrecovered_points(tmp_path, python, child_env):
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    with pytest.warns(RuntimeWarning, match=f'{victim} \\({N} points\\).*write access'):
        repo = Repo(root, read_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        list(repo.iter_runs())   # once per repository object, not on every query
    assert os.path.isdir(os.path.join(aim_dir, 'journal', victim))
    Repo(root)   # a writer recovers them; a read-only open is then quiet
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        Repo(root, read_only=True)


READONLY_CHECK = '''
import os, sys
from click.testing import CliRunner
from aim.cli.main import cli
# once as the owner (read-only, it changes nothing): every module it needs is imported while
# the interpreter's own files (perhaps under a private home) can still be read
CliRunner().invoke(cli, ['storage', 'check', '--repo', sys.argv[1]])
os.setgid(65534); os.setgroups([]); os.setuid(65534)
res = CliRunner().invoke(cli, ['storage', 'check', '--repo', sys.argv[1]])
print(res.output)
sys.exit(res.exit_code)
'''


def test_check_without_write_access_names_unrecovered_points(tmp_path, python, child_env):
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    if os.geteuid() == 0:   # as another user; as the owner, a repository made read-only
        import tempfile
        base = tempfile.mkdtemp()   # tmp_path's parents are private to root
        try:
            os.chmod(base, 0o755)
            copy = os.path.join(base, 'repo')
            shutil.copytree(root, copy)
            for d, _, files in os.walk(copy):
                os.chmod(d, 0o755)
                for f in files:
                    os.chmod(os.path.join(d, f), 0o644)
            res = subprocess.run([python, '-c', READONLY_CHECK, copy], capture_output=True,
                                 text=True, env=child_env, timeout=120, cwd='/')
        finally:
            shutil.rmtree(base)
        code, output = res.returncode, res.stdout + res.stderr
    else:
        for d in ('', 'journal', 'locks'):
            os.chmod(os.path.join(aim_dir, d), 0o555)
        try:
            r = check(root)
        finally:
            for d in ('', 'journal', 'locks'):
                os.chmod(os.path.join(aim_dir, d), 0o755)
        code, output = r.exit_code, r.output
    assert code == 1, output
    assert victim in output and f'{N} points' in output and 'write access' in output


def test_check_by_a_writer_with_the_locks_folder_deleted_is_not_alarmed(tmp_path, python,
                                                                       child_env):
    """A user who can write recovers the journal on any open: not a problem for check, even
    with locks/ gone (it is made again)."""
    root, aim_dir, victim = crashed_run(tmp_path, python, child_env)
    shutil.rmtree(os.path.join(aim_dir, 'locks'))
    res = check(root)
    assert res.exit_code == 0, res.output
