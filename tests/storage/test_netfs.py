"""A repository on a network file system (NFS, Lustre, ...): refused for writing, read with a
warning. A fake mountinfo (AIM_TEST_MOUNTINFO) mounts a tmp directory as nfs4; each check
runs in its own process so that the per-process mount table and warnings do not leak."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from aim.storage.netfs import Mount, mount_of, parse_mountinfo

AIM_CLI = os.path.join(os.path.dirname(sys.executable), 'aim')


@pytest.fixture
def mounts(tmp_path):
    """A fake mountinfo: this machine's mounts plus <tmp>/nfs as nfs4, a local ext4 mount
    nested in it at <tmp>/nfs/scratch, and <tmp>/with space as lustre (an escaped mount
    point). Returns (mountinfo path, nfs dir, nested local dir, dir with a space)."""
    base = os.path.realpath(tmp_path)
    nfs = os.path.join(base, 'nfs')
    scratch = os.path.join(nfs, 'scratch')
    spaced = os.path.join(base, 'with space')
    for d in (nfs, scratch, spaced):
        os.makedirs(d)
    with open('/proc/self/mountinfo', 'rb') as f:
        real = f.read()
    fake = os.path.join(base, 'mountinfo')
    with open(fake, 'wb') as f:
        f.write(real.rstrip(b'\n') + b'\n')
        f.write(f'900 27 0:99 /export {nfs} rw,relatime shared:5 master:3 - nfs4 '
                f'server:/export rw,vers=4.2,addr=10.0.0.1\n'.encode())
        f.write(f'901 900 254:3 / {scratch} rw,relatime - ext4 /dev/vdb rw\n'.encode())
        escaped = spaced.replace(' ', '\\040')
        f.write(f'902 27 0:98 / {escaped} rw - lustre 10.0.0.2@tcp:/fs rw,flock\n'.encode())
    return fake, nfs, scratch, spaced


def run_child(code: str, child_env, mountinfo: str | None = None, **env: str):
    env_ = dict(child_env, **env)
    if mountinfo is not None:
        env_['AIM_TEST_MOUNTINFO'] = mountinfo
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env_,
                          capture_output=True, text=True, timeout=120)


def run_cli(args: list[str], child_env, mountinfo: str | None = None, **env: str):
    env_ = dict(child_env, **env)
    if mountinfo is not None:
        env_['AIM_TEST_MOUNTINFO'] = mountinfo
    return subprocess.run([AIM_CLI, *args], env=env_, capture_output=True, text=True,
                          timeout=120)


TRACK = '''
    import sys
    from aim import Run
    run = Run(repo=sys.argv[1] if len(sys.argv) > 1 else {repo!r},
              system_tracking_interval=None, capture_terminal_logs=False)
    run['lr'] = 0.1
    for i in range(5):
        run.track(float(i), name='loss', step=i)
    run.close()
    print('OK', run.hash)
'''

REFUSED = '''
    from aim import Repo, Run
    from aim.errors import NetworkFilesystemError
    try:
        {call}
    except NetworkFilesystemError as e:
        print('REFUSED', e.fstype, e.mount_point, e.path)
        print(e)
    else:
        print('OPENED')
'''


# the parser --------------------------------------------------------------------------------
def test_parse_mountinfo_optional_fields_and_escapes():
    text = (b'36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n'
            b'37 35 0:40 / /data/my\\040runs\\011x rw shared:2 master:7 propagate_from:3 - '
            b'nfs4 srv:/a\\040b rw\n'
            b'38 35 0:41 / /back\\134slash rw - cifs //srv/share rw\n'
            b'39 35 0:42 / /no-optional rw - fuse.sshfs me@host: rw\n'
            b'40 35 0:43 / /caf\xc3\xa9 rw - lustre x rw\n')
    assert parse_mountinfo(text) == [
        Mount('/mnt2', 'ext3'),
        Mount('/data/my runs\tx', 'nfs4'),
        Mount('/back\\slash', 'cifs'),
        Mount('/no-optional', 'fuse.sshfs'),
        Mount('/café', 'lustre'),
    ]


def test_parse_mountinfo_skips_lines_it_cannot_read():
    text = (b'\n'
            b'garbage\n'
            b'1 2 3:4 / /no-separator rw ext4 /dev/x rw\n'
            b'1 2 3:4 / /nothing-after rw -\n'
            b'1 2 - / /dash-too-early rw\n'
            b'5 1 0:1 / / rw - ext4 /dev/vda rw\n')
    assert parse_mountinfo(text) == [Mount('/', 'ext4')]


def test_mount_of_longest_prefix_last_one_wins():
    mounts = [Mount('/', 'ext4'), Mount('/shared', 'nfs4'), Mount('/shared/local', 'ext4'),
              Mount('/stacked', 'ext4'), Mount('/stacked', 'lustre')]
    assert mount_of('/shared/run', mounts) == Mount('/shared', 'nfs4')
    assert mount_of('/shared', mounts) == Mount('/shared', 'nfs4')
    assert mount_of('/shared/local/x', mounts) == Mount('/shared/local', 'ext4')
    assert mount_of('/sharedother/x', mounts) == Mount('/', 'ext4')  # a prefix of the name only
    assert mount_of('/stacked/x', mounts) == Mount('/stacked', 'lustre')  # mounted on top
    assert mount_of('/x', []) is None


# detection ---------------------------------------------------------------------------------
def test_network_filesystem_detection(mounts, child_env, tmp_path):
    fake, nfs, scratch, spaced = mounts
    link = os.path.join(os.path.realpath(tmp_path), 'link-to-nfs')
    os.symlink(nfs, link)
    paths = {'nfs': nfs, 'not_yet': os.path.join(nfs, 'a', 'b', 'c'), 'scratch': scratch,
             'scratch_sub': os.path.join(scratch, 'run'), 'spaced': spaced,
             'link': os.path.join(link, 'repo'), 'base': os.path.realpath(tmp_path),
             'sibling': nfs + 'other', 'work': os.getcwd()}
    out = run_child(f'''
        import json
        from aim.storage.netfs import network_filesystem
        print(json.dumps({{k: network_filesystem(p) for k, p in {paths!r}.items()}}))
    ''', child_env, fake)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        'nfs': 'nfs4', 'not_yet': 'nfs4', 'scratch': None, 'scratch_sub': None,
        'spaced': 'lustre', 'link': 'nfs4', 'base': None, 'sibling': None, 'work': None}


@pytest.mark.parametrize('broken', ['missing', 'directory', 'garbage', 'empty'])
def test_unreadable_mountinfo_means_local(broken, mounts, child_env, tmp_path):
    _, nfs, _, _ = mounts
    fake = str(tmp_path / 'broken-mountinfo')
    if broken == 'directory':
        os.mkdir(fake)
    elif broken == 'garbage':
        with open(fake, 'wb') as f:
            f.write(b'\xff\xfe\x00 - - -\n1 2\n' * 10)
    elif broken == 'empty':
        open(fake, 'wb').close()
    out = run_child(TRACK.format(repo=nfs), child_env, fake)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('OK')
    assert os.path.exists(os.path.join(nfs, '.aim', 'repo.db'))


# writers are refused -----------------------------------------------------------------------
def assert_refused(out, path: str):
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith('REFUSED nfs4 '), out.stdout
    message = '\n'.join(lines[1:])
    for part in (path, 'nfs4', 'WAL', 'aim server --repo', "aim://HOST:53800",
                 'AIM_SPOOL_DIR', 'offline=True', 'aim sync --watch', 'AIM_ALLOW_NETWORK_FS=1'):
        assert part in message, part


def test_run_is_refused_and_nothing_is_created(mounts, child_env):
    fake, nfs, _, _ = mounts
    repo = os.path.join(nfs, 'new-repo')
    call = f'Run(repo={repo!r}, system_tracking_interval=None, capture_terminal_logs=False)'
    out = run_child(REFUSED.format(call=call), child_env, fake)
    assert_refused(out, repo)
    assert not os.path.exists(repo)


def test_repo_init_is_refused_in_an_existing_empty_dir(mounts, child_env):
    fake, nfs, _, _ = mounts
    out = run_child(REFUSED.format(call=f'Repo({nfs!r}, init=True)'), child_env, fake)
    assert_refused(out, nfs)
    assert os.listdir(nfs) == ['scratch']  # no .aim


def test_cli_is_refused(mounts, child_env):
    fake, nfs, _, _ = mounts
    repo = os.path.join(nfs, 'cli-repo')
    out = run_cli(['init', '--repo', repo], child_env, fake)
    assert out.returncode != 0
    assert 'network file system (nfs4' in out.stderr and 'aim server' in out.stderr, out.stderr
    assert not os.path.exists(os.path.join(repo, '.aim'))  # `aim init` makes the dir itself
    # an existing repository (made without the hook): `runs ls` opens it for writing
    assert run_cli(['init', '--repo', nfs], child_env).returncode == 0
    out = run_cli(['runs', 'ls', '--repo', nfs], child_env, fake)
    assert out.returncode != 0
    assert 'network file system (nfs4' in out.stderr and 'aim server' in out.stderr, out.stderr


# readers are let through -------------------------------------------------------------------
def test_read_only_open_warns_once_and_reads(mounts, child_env):
    fake, nfs, _, _ = mounts
    made = run_child(TRACK.format(repo=nfs), child_env)  # made without the hook: "local"
    assert made.returncode == 0, made.stderr
    run_hash = made.stdout.split()[1]
    out = run_child(f'''
        import warnings
        warnings.simplefilter('always')
        from aim import Repo
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            first = Repo({nfs!r}, read_only=True)
            second = Repo({nfs!r}, read_only=True)
            hashes = second.list_all_runs()
            values = [v for r in first.iter_runs() for m in r.metrics() for v in m.values]
        ours = [w for w in caught if issubclass(w.category, RuntimeWarning)
                and 'network file system' in str(w.message)]
        print(len(ours), hashes, values)
        print(ours[0].message)
    ''', child_env, fake)
    assert out.returncode == 0, out.stderr
    first, message = out.stdout.splitlines()[:2]
    assert first == f"1 ['{run_hash}'] [0.0, 1.0, 2.0, 3.0, 4.0]"
    assert 'nfs4' in message and 'stale' in message and 'aim server' in message
    # opening the same repository for writing is refused
    out = run_child(REFUSED.format(call=f'Repo({nfs!r})'), child_env, fake)
    assert_refused(out, nfs)


# the escape hatch and local disks ----------------------------------------------------------
def test_allow_network_fs_lets_writers_through(mounts, child_env):
    fake, nfs, _, _ = mounts
    out = run_child(TRACK.format(repo=nfs), child_env, fake, AIM_ALLOW_NETWORK_FS='1')
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('OK')
    assert 'network file system' not in out.stderr
    assert os.path.exists(os.path.join(nfs, '.aim', 'repo.db'))


@pytest.mark.parametrize('where', ['tmp', 'nested_local'])
def test_local_disks_are_unaffected(where, mounts, child_env, tmp_path):
    fake, _, scratch, _ = mounts
    repo = str(tmp_path / 'local') if where == 'tmp' else scratch
    out = run_child(TRACK.format(repo=repo), child_env, fake)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('OK')
    assert 'network file system' not in out.stderr
    out = run_cli(['runs', 'ls', '--repo', repo], child_env, fake)
    assert out.returncode == 0, out.stderr
