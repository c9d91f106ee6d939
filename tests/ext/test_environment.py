import os
import shutil
import subprocess
import sys

import pytest

needs_git = pytest.mark.skipif(shutil.which('git') is None, reason='needs the git command')

from aim.ext import collect_system_params
from aim.ext.environment import MASKED_VALUE, masked_environment
from aim.ext.git_info import collect_git_info, strip_url_credentials


def git(cwd, *args):
    subprocess.run(['git', *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def isolated_git(monkeypatch, tmp_path):
    """No global git config, and no repository above tmp_path can be found."""
    monkeypatch.setenv('GIT_CEILING_DIRECTORIES', str(tmp_path))
    monkeypatch.setenv('GIT_CONFIG_GLOBAL', os.devnull)
    monkeypatch.setenv('GIT_CONFIG_NOSYSTEM', '1')
    for name in ('GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE'):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def git_repo(tmp_path, isolated_git):
    if shutil.which('git') is None:
        pytest.skip('needs the git command')
    repo = tmp_path / 'project'
    repo.mkdir()
    git(repo, 'init', '-q', '-b', 'experiments')
    git(repo, 'config', 'user.name', 'Ada Lovelace')
    git(repo, 'config', 'user.email', 'ada@example.org')
    git(repo, 'remote', 'add', 'origin', 'https://ada:s3cr3t-token@example.org/ada/project.git')
    (repo / 'train.py').write_text('print(1)\n')
    git(repo, 'add', 'train.py')
    git(repo, 'commit', '-q', '-m', 'first')
    return repo


def test_git_info_inside_a_repository(git_repo):
    info = collect_git_info(str(git_repo))
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=git_repo, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert info['branch'] == 'experiments'
    assert info['remote_origin_url'] == 'https://example.org/ada/project.git'
    assert info['commit']['hash'] == head
    assert info['commit']['author'] == 'Ada Lovelace <ada@example.org>'
    assert isinstance(info['commit']['timestamp'], int)
    assert info['dirty'] is False


def test_git_info_sees_a_dirty_tree_from_a_subdirectory(git_repo):
    (git_repo / 'train.py').write_text('print(2)\n')
    sub = git_repo / 'configs'
    sub.mkdir()
    assert collect_git_info(str(sub))['dirty'] is True


@needs_git
def test_git_info_of_a_repository_without_commits(tmp_path, isolated_git):
    git(tmp_path, 'init', '-q')
    info = collect_git_info(str(tmp_path))
    assert info['commit'] is None
    assert info['remote_origin_url'] is None


def test_git_info_outside_a_repository_is_empty(tmp_path, isolated_git):
    assert collect_git_info(str(tmp_path)) == {}


def test_git_info_without_git_installed_is_empty(git_repo, monkeypatch, tmp_path):
    empty_bin = tmp_path / 'bin'
    empty_bin.mkdir()
    monkeypatch.setenv('PATH', str(empty_bin))
    assert collect_git_info(str(git_repo)) == {}


def test_credentials_are_removed_from_remote_urls():
    assert strip_url_credentials('https://tok@github.com/a/b') == 'https://github.com/a/b'
    assert strip_url_credentials('git@github.com:a/b.git') == 'git@github.com:a/b.git'
    assert strip_url_credentials('ssh://git@host/a') == 'ssh://host/a'


def test_secret_looking_environment_variables_are_masked():
    env = masked_environment({
        'WANDB_API_KEY': 'abc', 'hf_token': 'def', 'DB_PASSWORD': 'ghi',
        'MY_SECRET_THING': 'jkl', 'HOME': '/home/ada', 'CUDA_VISIBLE_DEVICES': '0,1',
    })
    assert env['WANDB_API_KEY'] == env['hf_token'] == env['DB_PASSWORD'] == MASKED_VALUE
    assert env['MY_SECRET_THING'] == MASKED_VALUE
    assert env['HOME'] == '/home/ada' and env['CUDA_VISIBLE_DEVICES'] == '0,1'


def test_system_params_describe_process_machine_and_git(git_repo, monkeypatch):
    monkeypatch.setenv('AIMKIT_TEST_API_KEY', 'do-not-store')
    monkeypatch.setenv('AIMKIT_TEST_PLAIN', 'visible')
    params = collect_system_params(cwd=str(git_repo))
    assert params['executable'] == sys.executable
    assert params['arguments'] == sys.argv
    assert params['python_version'] == sys.version
    assert 'psutil' in params['packages'] and 'numpy' in params['packages']
    assert params['env_variables']['AIMKIT_TEST_API_KEY'] == MASKED_VALUE
    assert params['env_variables']['AIMKIT_TEST_PLAIN'] == 'visible'
    assert 'do-not-store' not in repr(params)
    assert params['hostname']
    assert params['cpu']['logical_cores'] >= 1
    assert isinstance(params['gpus'], list)
    assert params['git_info']['branch'] == 'experiments'
    import json
    json.dumps(params)  # storable as a param as is
