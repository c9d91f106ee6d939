"""Repo methods and the shapes they return (reference §1.8)."""
import pytest

from aim import Repo, Run
from aim.sdk.types import QueryReportMode

pytestmark = pytest.mark.backends

QUIET = {'system_tracking_interval': None, 'capture_terminal_logs': False}


@pytest.fixture
def three_runs(make_run):
    hashes = []
    for i, lr in enumerate((0.001, 0.01, 0.1)):
        run = make_run(experiment='exp1' if i < 2 else 'exp2')
        run['hparams'] = {'lr': lr}
        for step in range(3):
            run.track(i + step, name='loss', context={'subset': 'train'})
        run.track(0.5, name='acc', context={'subset': 'val'})
        run.close()
        hashes.append(run.hash)
    return hashes


def test_constructors_and_default_repo(tmp_path, monkeypatch):
    path = str(tmp_path)
    assert not Repo.exists(path)
    repo = Repo(path, init=True)
    assert Repo.exists(path) and repo.path == str(tmp_path / '.aim')
    assert Repo.from_path(path) is Repo.from_path(path)      # pooled, as in Aim
    assert Repo(path, read_only=True).root_path == path
    (tmp_path / 'a' / 'b').mkdir(parents=True)
    monkeypatch.chdir(tmp_path / 'a' / 'b')
    assert Repo.default_repo().root_path == path
    assert Repo.default_repo_path() == path


def test_rm(tmp_path):
    Repo(str(tmp_path), init=True)
    Repo.rm(str(tmp_path))
    assert not Repo.exists(str(tmp_path))


def test_missing_repository_says_what_to_do(tmp_path):
    with pytest.raises(Exception, match='aim init'):
        Repo(str(tmp_path / 'nowhere'))


def test_get_run_and_iteration(repo, three_runs):
    run = repo.get_run(three_runs[0])
    assert isinstance(run, Run) and run.hash == three_runs[0] and run.read_only
    assert repo.get_run('0' * 24) is None
    assert [r.hash for r in repo.iter_runs()] == three_runs[::-1]   # newest first
    assert repo.total_runs_count() == 3
    assert sorted(repo.list_all_runs()) == sorted(three_runs)
    assert repo.list_active_runs() == []
    assert repo.run_exists(three_runs[1])


def test_active_runs_are_listed(make_run, repo):
    run = make_run()
    assert repo.list_active_runs() == [run.hash]


def test_reads_see_own_writes_without_reindex(make_run, repo):
    # Aim 3.29 hides closed runs from get_run/iter_runs until `aim storage reindex`
    run = make_run()
    run['x'] = 1
    run.track(1.0, name='loss')
    run.close()
    assert repo.get_run(run.hash)['x'] == 1
    assert repo.get_run(run.hash).get_metric('loss').values_list() == [1.0]
    assert [item.run.hash for item in repo.query_runs('run.x == 1')] == [run.hash]


def test_delete_runs_shape(repo, three_runs):
    assert repo.delete_run(three_runs[0]) is True
    assert repo.delete_run(three_runs[0]) is False
    assert repo.delete_runs([three_runs[1], 'nope']) == (False, ['nope'])
    assert repo.delete_runs([three_runs[2]]) == (True, [])
    assert repo.list_all_runs() == []


def test_copy_and_move_runs(repo, three_runs, tmp_path):
    dest_path = str(tmp_path / 'dest')
    assert repo.copy_runs([three_runs[0]], dest_path) == (True, [])
    dest = Repo.from_path(dest_path)
    copied = dest.get_run(three_runs[0])
    assert copied['hparams'] == {'lr': 0.001} and copied.experiment == 'exp1'
    assert copied.get_metric('loss', {'subset': 'train'}).values_list() == [0, 1, 2]
    assert repo.move_runs([three_runs[1]], dest) == (True, [])
    assert sorted(dest.list_all_runs()) == sorted(three_runs[:2])
    assert sorted(repo.list_all_runs()) == sorted([three_runs[0], three_runs[2]])


def test_batch_operations_accept_wildcards(repo, three_runs):
    prefix = three_runs[0][:6]
    assert repo.delete_runs([prefix + '*']) == (True, [])
    assert three_runs[0] not in repo.list_all_runs()


def test_query_runs_items(repo, three_runs):
    result = repo.query_runs('run.hparams.lr > 0.005')
    items = list(result.iter_runs())
    assert [item.run.hash for item in items] == [three_runs[2], three_runs[1]]
    names = sorted(m.name for m in items[0])        # a run item iterates its metrics
    assert names == ['acc', 'loss']
    assert sorted(m.name for m in result.iter()) == ['acc', 'acc', 'loss', 'loss']


@pytest.mark.parametrize('mode', list(QueryReportMode) + [0, 1])
def test_report_mode_accepted(repo, three_runs, mode):
    hashes = [item.run.hash for item in repo.query_runs('', report_mode=mode).iter_runs()]
    assert hashes == three_runs[::-1]
    metrics = list(repo.query_metrics("metric.name == 'acc'", report_mode=mode))
    assert len(metrics) == 3


def test_query_metrics_seed_and_head_names(repo, three_runs):
    seed = [m.run.hash for m in repo.traces("metric = 'loss' and context['subset'] = 'train'")]
    head = [m.run.hash for m in repo.query_metrics(
        "metric.name == 'loss' and metric.context.subset == 'train'")]
    alias = [m.run.hash for m in repo.iter_traces("metric.name == 'loss'")]
    assert seed == head == alias == three_runs[::-1]


def test_query_metrics_iter_runs(repo, three_runs):
    groups = [(item.run.hash, [m.name for m in item])
              for item in repo.query_metrics("metric.name == 'acc'").iter_runs()]
    assert groups == [(h, ['acc']) for h in three_runs[::-1]]


def test_query_dataframes(repo, three_runs):
    pytest.importorskip('pandas')
    runs_df = repo.query_runs('run.hparams.lr == 0.01').dataframe()
    assert runs_df['hash'].tolist() == [three_runs[1]]
    assert runs_df['hparams.lr'].tolist() == [0.01]
    metrics_df = repo.query_metrics("metric.name == 'loss'").dataframe()
    assert len(metrics_df) == 9
    assert {'idx', 'step', 'value', 'epoch', 'time', 'run.hash', 'metric.name',
            'metric.context.subset', 'run.hparams.lr'} <= set(metrics_df.columns)
    assert repo.query_runs('run.hparams.lr > 1').dataframe() is None


def test_collect_metrics_and_params(repo, three_runs):
    assert repo.collect_metrics() == {'acc': [{'subset': 'val'}], 'loss': [{'subset': 'train'}]}
    assert repo.collect_params() == {'hparams': {'lr': 0.1}}


def test_collect_sequence_info(repo, three_runs):
    info = repo.get_run(three_runs[0]).collect_sequence_info('metric')
    entries = sorted(info['metric'], key=lambda e: e['name'])
    assert [e['name'] for e in entries] == ['acc', 'loss']
    assert entries[1]['context'] == {'subset': 'train'}
    assert entries[1]['values']['last'] == 2 and entries[1]['values']['last_step'] == 2
    assert repo.collect_sequence_info('metric') == {
        'metric': {'acc': [{'subset': 'val'}], 'loss': [{'subset': 'train'}]}}


def test_an_unreachable_remote_repository_is_one_clear_error(tmp_path, monkeypatch):
    import socket

    from aim import Run
    from aim.errors import RemoteConnectionError
    monkeypatch.setenv('AIM_SPOOL_DIR', str(tmp_path / 'spool'))
    with socket.socket() as s:       # a port nothing listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    url = f'aim://127.0.0.1:{port}'
    with pytest.raises(RemoteConnectionError, match=f'Cannot reach the aim server at {url}'):
        Run(repo=url)
