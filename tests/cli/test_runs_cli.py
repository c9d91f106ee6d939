import os

from aim.storage.maintenance import directory_size


def loss_values(repo, run_hash):
    run = repo.get_run(run_hash)
    return run.get_metric('loss', {'subset': 'train'}).values.values_list()


def test_ls_prints_a_table_of_runs(repo_dir, make_run, invoke):
    first = make_run(repo_dir, name='baseline', experiment='cifar')
    second = make_run(repo_dir, experiment='mnist', close=False)
    result = invoke('runs', '--repo', repo_dir, 'ls')
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ['HASH', 'NAME', 'EXPERIMENT', 'CREATED', 'ACTIVE']
    by_hash = {line.split()[0]: line for line in lines[1:-1]}
    assert 'baseline' in by_hash[first.hash] and 'cifar' in by_hash[first.hash]
    assert by_hash[first.hash].rstrip().endswith('no')
    assert by_hash[second.hash].rstrip().endswith('yes')
    assert f'Run: {second.hash}' in by_hash[second.hash]
    assert lines[-1] == 'Total 2 runs.'
    # --repo is accepted after the subcommand too
    assert invoke('runs', 'ls', '--repo', repo_dir).stdout == result.stdout


def test_ls_outside_a_repository_says_what_to_do(tmp_path, invoke):
    result = invoke('runs', '--repo', tmp_path, 'ls')
    assert result.exit_code != 0
    assert 'No aim repository' in result.output and 'aim init' in result.output


def test_rm_asks_first_and_frees_space(repo_dir, make_run, invoke, reopen):
    keep = make_run(repo_dir)
    doomed = [make_run(repo_dir, points=20000) for _ in range(2)]
    size_before = directory_size(str(repo_dir / '.aim'))

    result = invoke('runs', '--repo', repo_dir, 'rm', doomed[0].hash, doomed[1].hash, input='n\n')
    assert result.exit_code == 1 and 'Aborted' in result.output
    assert len(reopen(repo_dir).list_all_runs()) == 3

    result = invoke('runs', '--repo', repo_dir, 'rm', doomed[0].hash, doomed[1].hash, input='y\n')
    assert result.exit_code == 0, result.output
    assert 'Deleted 2 run(s).' in result.stdout
    repo = reopen(repo_dir)
    assert repo.list_all_runs() == [keep.hash]
    assert repo.get_run(doomed[0].hash) is None
    assert repo.total_runs_count() == 1
    assert directory_size(str(repo_dir / '.aim')) < size_before
    assert loss_values(reopen(repo_dir), keep.hash) == [i * 0.5 for i in range(10)]


def test_rm_with_wildcards_and_yes(repo_dir, make_run, invoke, reopen):
    runs = [make_run(repo_dir) for _ in range(3)]
    prefix = runs[0].hash[:3]
    expected_gone = {r.hash for r in runs if r.hash.startswith(prefix)}
    result = invoke('runs', '--repo', repo_dir, 'rm', f'{prefix}*', '-y')
    assert result.exit_code == 0, result.output
    assert set(reopen(repo_dir).list_all_runs()) == {r.hash for r in runs} - expected_gone
    result = invoke('runs', '--repo', repo_dir, 'rm', '*', '-y')
    assert result.exit_code == 0
    assert reopen(repo_dir).list_all_runs() == []


def test_rm_of_an_unknown_hash_changes_nothing(repo_dir, make_run, invoke, reopen):
    run = make_run(repo_dir)
    result = invoke('runs', '--repo', repo_dir, 'rm', run.hash, 'nosuchrun', '-y')
    assert result.exit_code != 0
    assert "No run matches 'nosuchrun'" in result.output and 'aim runs ls' in result.output
    assert reopen(repo_dir).list_all_runs() == [run.hash]


def test_rm_refuses_a_run_that_is_being_written(repo_dir, make_run, invoke, reopen):
    live = make_run(repo_dir, close=False)
    result = invoke('runs', '--repo', repo_dir, 'rm', live.hash, '-y')
    assert result.exit_code != 0
    assert live.hash in result.output and str(os.getpid()) in result.output
    live.track(1.0, name='loss', context={'subset': 'train'})
    live.close()
    assert reopen(repo_dir).list_all_runs() == [live.hash]


def test_cp_copies_runs_into_another_repository(repo_dir, make_run, invoke, tmp_path, reopen):
    runs = [make_run(repo_dir, name=f'r{i}') for i in range(2)]
    dest = tmp_path / 'dest'
    result = invoke('runs', '--repo', repo_dir, 'cp', '*', '--destination', dest)
    assert result.exit_code != 0 and 'aim init' in result.output  # no such repository yet
    invoke('init', '--repo', dest)
    result = invoke('runs', '--repo', repo_dir, 'cp', '*', '--destination', dest)
    assert result.exit_code == 0, result.output
    assert sorted(reopen(dest).list_all_runs()) == sorted(r.hash for r in runs)
    assert sorted(reopen(repo_dir).list_all_runs()) == sorted(r.hash for r in runs)
    copied = reopen(dest).get_run(runs[1].hash)
    assert copied.name == 'r1' and copied['hparams'] == {'lr': 0.01}
    assert loss_values(reopen(dest), runs[1].hash) == [i * 0.5 for i in range(10)]
    # copying again reports the runs that are already there
    result = invoke('runs', '--repo', repo_dir, 'cp', runs[0].hash, '--destination', dest)
    assert result.exit_code != 0 and 'already exists' in result.output


def test_mv_moves_runs_after_confirmation(repo_dir, make_run, invoke, tmp_path, reopen):
    moved, stays = make_run(repo_dir), make_run(repo_dir)
    dest = tmp_path / 'dest'
    invoke('init', '--repo', dest)
    result = invoke('runs', '--repo', repo_dir, 'mv', moved.hash, '--destination', dest,
                    input='n\n')
    assert result.exit_code == 1
    assert reopen(dest).list_all_runs() == []
    result = invoke('runs', '--repo', repo_dir, 'mv', moved.hash, '--destination', dest, '-y')
    assert result.exit_code == 0, result.output
    assert reopen(repo_dir).list_all_runs() == [stays.hash]
    assert reopen(dest).list_all_runs() == [moved.hash]
    assert loss_values(reopen(dest), moved.hash) == [i * 0.5 for i in range(10)]


def test_mv_into_the_same_repository_is_refused(repo_dir, make_run, invoke, reopen):
    run = make_run(repo_dir)
    result = invoke('runs', '--repo', repo_dir, 'mv', run.hash, '--destination', repo_dir, '-y')
    assert result.exit_code != 0 and 'source repository' in result.output
    assert reopen(repo_dir).list_all_runs() == [run.hash]


def test_close_of_a_finished_run_changes_nothing(repo_dir, make_run, invoke, reopen):
    run = make_run(repo_dir)
    end_time = reopen(repo_dir).get_run(run.hash).end_time
    result = invoke('runs', '--repo', repo_dir, 'close', run.hash, '-y')
    assert result.exit_code == 0, result.output
    assert 'Closed 0 run(s) (1 were already finished).' in result.stdout
    assert reopen(repo_dir).get_run(run.hash).end_time == end_time
