"""Repo.delete_runs / copy_runs / move_runs as Aim's SDK offers them: (ok, remaining)."""
from aim.storage.maintenance import directory_size


def values(repo, run_hash):
    return repo.get_run(run_hash).get_metric('loss', {'subset': 'train'}).values.values_list()


def test_delete_runs_reports_what_remains(repo_dir, make_run, reopen):
    runs = [make_run(repo_dir, points=3000) for _ in range(3)]
    live = make_run(repo_dir, close=False)
    repo = reopen(repo_dir)
    assert repo.total_runs_count() == 4
    assert repo.list_active_runs() == [live.hash]

    ok, remaining = repo.delete_runs([runs[0].hash, runs[1].hash, live.hash])
    assert ok is False and remaining == [live.hash]
    assert sorted(reopen(repo_dir).list_all_runs()) == sorted([runs[2].hash, live.hash])
    assert reopen(repo_dir).total_runs_count() == 2
    assert repo.delete_run(runs[0].hash) is False  # already gone


def test_deleting_runs_frees_disk_space(repo_dir, make_run, reopen):
    # float32-exact values of 20,000 points take about 80 kB a run: use more, so that the
    # runs and not the fixed pages of the database dominate the size
    runs = [make_run(repo_dir, points=100_000) for _ in range(3)]
    before = directory_size(str(repo_dir / '.aim'))
    ok, _ = reopen(repo_dir).delete_runs([runs[0].hash, runs[1].hash])
    assert ok
    assert directory_size(str(repo_dir / '.aim')) < before * 0.6


def test_copy_and_move_round_trip(repo_dir, make_run, reopen, tmp_path):
    first, second = make_run(repo_dir, name='first'), make_run(repo_dir, name='second')
    other = tmp_path / 'other'
    repo = reopen(repo_dir)

    ok, remaining = repo.copy_runs([first.hash], str(other))
    assert (ok, remaining) == (True, [])
    dest = reopen(other)
    assert dest.list_all_runs() == [first.hash]
    assert dest.get_run(first.hash).name == 'first'
    assert values(dest, first.hash) == values(reopen(repo_dir), first.hash)

    ok, remaining = repo.move_runs([second.hash], dest)
    assert (ok, remaining) == (True, [])
    assert reopen(repo_dir).list_all_runs() == [first.hash]
    assert sorted(reopen(other).list_all_runs()) == sorted([first.hash, second.hash])
    assert values(reopen(other), second.hash) == [i * 0.5 for i in range(10)]

    # and back again: the moved run is whole in its old home
    ok, _ = reopen(other).move_runs([second.hash], str(repo_dir))
    assert ok and reopen(repo_dir).get_run(second.hash).name == 'second'
    assert values(reopen(repo_dir), second.hash) == [i * 0.5 for i in range(10)]
