"""The `aim` command names and options of reference §3 that exist here, driven as Aim
users drive them; the repository is then opened with the SDK to check the result."""
import os
import subprocess
import sys

from click.testing import CliRunner

from aim import Repo, Run
from aim.cli.main import cli

QUIET = {'system_tracking_interval': None, 'capture_terminal_logs': False}


def invoke(*args, input=None):
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result


def _runs(repo, n):
    hashes = []
    for i in range(n):
        with Run(repo=repo, **QUIET) as run:
            run['i'] = i
            run.track(float(i), name='loss')
        hashes.append(run.hash)
    return hashes


def test_version():
    result = invoke('version')
    assert result.exit_code == 0 and result.output.startswith('Aim v')


def test_installed_entry_point_runs():
    exe = os.path.join(os.path.dirname(sys.executable), 'aim')
    out = subprocess.run([exe, 'version'], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.startswith('Aim v')


def test_init_with_repo_option(tmp_path):
    result = invoke('init', '--repo', str(tmp_path))
    assert result.exit_code == 0 and Repo.exists(str(tmp_path))
    again = invoke('init', '--repo', str(tmp_path))     # an existing repository is kept
    assert again.exit_code == 0 and Repo.exists(str(tmp_path))


def test_init_skip_if_exists(tmp_path):
    assert invoke('init', '--repo', str(tmp_path), '-s').exit_code == 0
    assert invoke('init', '--repo', str(tmp_path), '--skip-if-exists').exit_code == 0


def test_runs_ls_with_group_and_command_repo_option(repo):
    hashes = _runs(repo, 2)
    for args in (('runs', '--repo', repo.root_path, 'ls'),
                 ('runs', 'ls', '--repo', repo.root_path)):
        result = invoke(*args)
        assert result.exit_code == 0
        assert all(h in result.output for h in hashes)
        assert 'Total 2 runs.' in result.output


def test_runs_rm_with_wildcard(repo):
    hashes = _runs(repo, 2)
    prefix = hashes[0][:5]
    result = invoke('runs', '--repo', repo.root_path, 'rm', '-y', prefix + '*')
    assert result.exit_code == 0
    assert Repo(repo.root_path).list_all_runs() == [h for h in hashes
                                                    if not h.startswith(prefix)]


def test_runs_cp_and_mv(repo, tmp_path):
    hashes = _runs(repo, 2)
    dest = str(tmp_path / 'dest')
    missing = invoke('runs', '--repo', repo.root_path, 'cp', hashes[0], '--destination', dest)
    assert missing.exit_code != 0 and 'aim init --repo' in missing.output
    assert invoke('init', '--repo', dest).exit_code == 0
    cp = invoke('runs', '--repo', repo.root_path, 'cp', hashes[0], '--destination', dest)
    assert cp.exit_code == 0, cp.output
    mv = invoke('runs', '--repo', repo.root_path, 'mv', hashes[1], '--destination', dest, '-y')
    assert mv.exit_code == 0, mv.output
    dest_repo = Repo.from_path(dest)
    assert sorted(dest_repo.list_all_runs()) == sorted(hashes)
    assert dest_repo.get_run(hashes[1])['i'] == 1
    assert Repo(repo.root_path).list_all_runs() == [hashes[0]]


def test_runs_close_finishes_a_crashed_run(repo):
    script = ('import os\n'
              'from aim import Run\n'
              f'run = Run(repo={repo.root_path!r}, system_tracking_interval=None, '
              'capture_terminal_logs=False)\n'
              'run.track(1.0, name="loss")\n'
              'run.flush()\n'
              'print(run.hash, flush=True)\n'
              'os._exit(0)\n')  # dies without closing the run
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    run_hash = out.split()[-1]
    result = invoke('runs', '--repo', repo.root_path, 'close', '-y', run_hash)
    assert result.exit_code == 0, result.output
    run = Repo(repo.root_path).get_run(run_hash)
    assert run.end_time is not None and not run.active
    assert run.get_metric('loss').values_list() == [1.0]


def test_storage_reindex(repo):
    hashes = _runs(repo, 2)
    result = invoke('storage', 'reindex', '--repo', repo.root_path)
    assert result.exit_code == 0, result.output
    assert sorted(r.hash for r in Repo(repo.root_path).iter_runs()) == sorted(hashes)


def test_storage_reindex_aim_spelling(repo):
    _runs(repo, 1)
    result = CliRunner().invoke(cli, ['storage', '--repo', repo.root_path, 'reindex', '-y'])
    assert result.exit_code == 0, result.output


def test_up_options():
    result = invoke('up', '--help')
    assert result.exit_code == 0
    for option in ('-h, --host', '-p, --port', '--repo', '--read-only', '--log-level'):
        assert option in result.output, option
    assert '127.0.0.1' in result.output and '43800' in result.output


def test_missing_repository_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ['runs', '--repo', str(tmp_path), 'ls'])
    assert result.exit_code != 0 and 'aim init' in result.output
