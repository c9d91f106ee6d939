"""Queries over a real repository: every example of the issue and the Aim-equivalent forms."""
from __future__ import annotations

import pytest

from aim.ql import QuerySyntaxError

pytestmark = pytest.mark.backends


@pytest.mark.parametrize('query, expected', [
    ('run.hparams.lr > 0.005', [2, 1]),
    ("run['hparams']['lr'] > 0.005", [2, 1]),
    ("run['hparams', 'lr'] == 0.01", [1]),
    ("run['hparams'].lr == 0.01", [1]),
    ("run.hparams['lr'] == 0.01", [1]),
    ("run.experiment == 'exp1'", [1, 0]),
    ("run.hparams.optimizer == 'adam' and run.hparams.batch_size >= 64", [2]),
    ("run.hparams.optimizer in ['sgd', 'rmsprop']", [1]),
    ("run.hparams.optimizer not in ('sgd',)", [2, 0]),
    ("'mni' in run.dataset", [1]),
    ("run.dataset.startswith('cif')", [2, 0]),
    ("str(run.dataset).startswith('cif')", [2, 0]),
    ("run.dataset.upper() == 'MNIST'", [1]),
    ("re_search('^mn', run.dataset)", [1]),
    ("'baseline' in run.tags", [0]),
    ("'tuned' not in run.tags", [0]),
    ("any(t == 'tuned' for t in run.tags)", [2, 1]),
    ('run.created_at > datetime.now() - timedelta(days=1)', [2, 1, 0]),
    ('run.created_at < datetime(2000, 1, 1)', []),
    ('run.finalized_at > datetime(2000, 1, 1)', [2, 1, 0]),
    ('run.duration < 1000', [2, 1, 0]),
    ('run.active', []),
    ('not run.active', [2, 1, 0]),
    ('run.end_time is not None', [2, 1, 0]),
    ("run.metrics['loss', {'subset': 'train'}].max > 2", [2]),
    ("run.metrics['loss', {'subset': 'train'}].last < 0.5", [0]),
    ("run.metrics['int_metric'].last == 3", [2, 1, 0]),
    ("run.metrics['loss'].last < 100", []),                 # no loss with context {}
    ("run.metrics['acc', {'subset': 'val'}].count == 5", [2, 1, 0]),
    ('math.log10(run.hparams.lr) < -1.5', [1, 0]),
    ('run.hparams.lr * 10 > 0.5', [2]),
    ('SELECT loss IF run.hparams.lr > 0.05', [2]),
    ('select loss, acc if run.hparams.lr > 0.05', [2]),
    ("run.hash.startswith('no-such-prefix')", []),
    ('run.run_index >= 1', [2, 1]),
    ('run.hparams.lr < 0.01 and run.run_index >= 0', [0]),
    ('run.hparams.batch_size == None', []),
    ('', [2, 1, 0]),
    ('   ', [2, 1, 0]),
    ('run.hparams.lr = 0.01', [1]),                         # a single = is ==
    ("run.hparams.optimizer = 'adam' AND run.hparams.lr > 0.01", [2]),
    ('0.005 < run.hparams.lr < 0.05', [1]),
    ("run.name.startswith('Run: ')", [2, 1, 0]),
    ("run.description == None", [2, 1, 0]),
    ('len(run.tags) == 1', [2, 1, 0]),
    ('run.hparams.lr in [0.001, 0.1]', [2, 0]),
    ("run['hparams'] == {'lr': 0.01, 'optimizer': 'sgd', 'batch_size': 64}", [1]),
    ("sorted(run.hparams.keys()) == ['batch_size', 'lr', 'optimizer']", [2, 1, 0]),
    ("run.hparams.get('lr', 0) > 0.05", [2]),
    ("max(run.hparams.lr, 0.05) == 0.05", [1, 0]),
    ("round(run.hparams.lr * 1000) == 10", [1]),
    ("run.hparams.lr > 0.05 if run.dataset == 'cifar10' else True", [2, 1]),
])
def test_run_queries(run_query, query, expected):
    assert run_query(query) == expected


@pytest.mark.parametrize('query, expected', [
    ("metric.name == 'loss'", [(2, 'loss'), (1, 'loss'), (0, 'loss')]),
    ("metric == 'loss' and run.hparams.lr < 0.005", [(0, 'loss')]),
    ("trace.name == 'acc' and run.run_index == 1", [(1, 'acc')]),
    ("metric.context.subset == 'val'", [(2, 'acc'), (1, 'acc'), (0, 'acc')]),
    ("metric.context['subset'] == 'train' and run.hparams.lr < 0.05", [(1, 'loss'), (0, 'loss')]),
    ("context.subset == 'train' and metric.run.hparams.lr > 0.05", [(2, 'loss')]),
    ('metric.last_step == 8', []),
    ("metric.first_step == 0 and metric.name == 'acc'", [(2, 'acc'), (1, 'acc'), (0, 'acc')]),
    ('metric.context == {}', [(2, 'int_metric'), (1, 'int_metric'), (0, 'int_metric')]),
    ('not metric.context', [(2, 'int_metric'), (1, 'int_metric'), (0, 'int_metric')]),
    ("metric.count == 10", [(2, 'loss'), (1, 'loss'), (0, 'loss')]),
    ("metric.min < 0.3", [(2, 'acc'), (1, 'acc'), (0, 'acc'), (0, 'loss')]),
    ("metric.max > 2.5 and metric.name == 'loss'", [(2, 'loss')]),
    ("metric.last > 2 and metric.last < 3", [(2, 'loss')]),
    ("metric.first == 2 + 1.0", [(2, 'int_metric'), (2, 'loss'), (1, 'int_metric'),
                                 (0, 'int_metric')]),
    ("metric.values_between(0, 3).mean() < 0.15", [(2, 'acc'), (1, 'acc'), (0, 'acc')]),
    ("metric.name == 'loss' and metric.values_between(5, 10).max() < 0.2", [(0, 'loss')]),
    ("metric.name == 'acc' and metric.last_n(2).sum() > 0.69", [(2, 'acc'), (1, 'acc'),
                                                                 (0, 'acc')]),
    ("metric.name == 'acc' and metric.values.count() == 5", [(2, 'acc'), (1, 'acc'),
                                                              (0, 'acc')]),
    ("metric.name == 'acc' and len(metric.values) == 5", [(2, 'acc'), (1, 'acc'), (0, 'acc')]),
    ("metric.name == 'loss' and metric.values.std() > 0.2", [(2, 'loss'), (1, 'loss'),
                                                             (0, 'loss')]),
    ("metric.context.missing == 'x'", []),
    ("metric.context.missing != 'x' and metric.name == 'int_metric' and run.run_index == 0",
     [(0, 'int_metric')]),
    ("metric in ['acc', 'int_metric'] and run.run_index == 2", [(2, 'acc'), (2, 'int_metric')]),
    ("SELECT loss IF metric.name == 'acc' and run.run_index == 0", [(0, 'acc')]),
])
def test_trace_queries(trace_query, query, expected):
    assert trace_query(query) == expected


def test_seed_quick_start_verbatim(repo, make_run):
    run = make_run()
    run['params'] = {'foo': 'bar'}
    for i in range(100):
        run.track(i, step=i, name='ordinals', context={})
        run.track(-i, step=i, name='negative integers', context={})
        if i % 2 == 0:
            run.track(i, step=i, name='ordinals', context={'odds': True})
    run.close()
    other = make_run()
    other['params'] = {'foo': 'baz'}
    other.track(1, step=0, name='ordinals', context={'odds': True})
    other.close()

    q = '''
metric.run.params.foo == 'bar' and metric = 'ordinals' and context['odds'] = True
'''
    traces = repo.traces(query=q)
    found = []
    for trc in traces:
        odd_ordinals = trc.values.values_list()
        found.append(odd_ordinals)
    assert found == [list(range(0, 100, 2))]
    # the later names lead to the same result
    assert [m.values.values_list() for m in repo.query_metrics(
        "metric.run.params.foo == 'bar' and metric.name == 'ordinals' "
        "and metric.context.odds == True")] == found
    assert [m.values.values_list() for m in repo.iter_traces(q)] == found


def test_archived_runs_hidden_unless_mentioned(three_runs, run_query, trace_query):
    repo, hashes = three_runs
    from aim import Run
    run = Run(hashes[1], repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    run.archived = True
    run.close()
    assert run_query('') == [2, 0]
    assert run_query('run.hparams.lr > 0.005') == [2]
    assert run_query('run.archived') == [1]
    assert run_query('run.archived == True') == [1]
    assert run_query('run.archived == False') == [2, 0]
    assert run_query('run.archived or not run.archived') == [2, 1, 0]
    assert trace_query("metric.name == 'loss'") == [(2, 'loss'), (0, 'loss')]
    assert trace_query("metric.name == 'loss' and run.archived in [True, False]") == \
        [(2, 'loss'), (1, 'loss'), (0, 'loss')]


def test_run_collection_items(three_runs):
    repo, hashes = three_runs
    items = list(repo.query_runs('run.hparams.lr > 0.005'))
    assert [i.run.hash for i in items] == [hashes[2], hashes[1]]
    assert items[0].run.hparams['lr'] if hasattr(items[0].run, 'hparams') else True
    assert items[0].run['hparams']['lr'] == 0.1
    assert sorted(m.name for m in items[0]) == ['acc', 'int_metric', 'loss']
    assert [i.run.hash for i in repo.query_runs('run.hparams.lr > 0.005').iter_runs()] == \
        [hashes[2], hashes[1]]
    assert len(list(repo.query_runs('run.run_index == 0').iter())) == 3


def test_trace_collection_iter_runs(three_runs):
    repo, hashes = three_runs
    groups = [(item.run.hash, sorted(m.name for m in item))
              for item in repo.query_metrics("metric.name != 'int_metric'").iter_runs()]
    assert groups == [(h, ['acc', 'loss']) for h in reversed(hashes)]


def test_metrics_of_a_query_read_values(three_runs):
    repo, hashes = three_runs
    metrics = list(repo.query_metrics("metric.name == 'loss' and run.run_index == 0"))
    assert len(metrics) == 1
    steps, values = metrics[0].values.sparse_numpy()
    assert steps.tolist() == list(range(10))
    assert values[0] == 1.0
    assert metrics[0].last_value == pytest.approx(0.1)
    assert metrics[0].count == 10
    assert metrics[0].context == {'subset': 'train'}


def test_collect_metrics_and_params(three_runs):
    repo, _ = three_runs
    assert repo.collect_metrics() == {'acc': [{'subset': 'val'}], 'int_metric': [{}],
                                      'loss': [{'subset': 'train'}]}
    params = repo.collect_params()
    assert set(params['hparams']) == {'lr', 'optimizer', 'batch_size'}
    assert params['only_first'] is True
    assert 'dataset' in params


def test_query_sees_own_unflushed_writes(repo, make_run):
    run = make_run()
    run['hparams'] = {'lr': 0.5}
    run.track(1.0, name='loss')
    assert [i.run.hash for i in repo.query_runs('run.hparams.lr == 0.5')] == [run.hash]
    assert [m.name for m in repo.query_metrics("metric.name == 'loss'")] == ['loss']


def test_syntax_error_raised_when_collection_is_made(three_runs):
    repo, _ = three_runs
    with pytest.raises(QuerySyntaxError) as info:
        repo.query_runs('run.hparams.lr > 0.01 && run.x')
    assert info.value.position == 22
    assert 'and' in info.value.hint
    with pytest.raises(SyntaxError):       # what Aim raised; still catchable as such
        repo.query_metrics('metric.name ==')


def test_results_stream_lazily(repo, make_run):
    for i in range(300):
        run = make_run()
        run['i'] = i
        run.close()
    iterator = iter(repo.query_runs('run.i >= 0'))
    first = next(iterator)
    assert first.run['i'] == 299          # newest first
    assert sum(1 for _ in iterator) == 299


def test_dataframes(three_runs):
    pd = pytest.importorskip('pandas')
    repo, hashes = three_runs
    df = repo.query_runs('run.hparams.lr > 0.005').dataframe()
    assert list(df['hash']) == [hashes[2], hashes[1]]
    df = repo.query_metrics("metric.name == 'acc'").dataframe()
    assert len(df) == 15
    assert repo.query_metrics("metric.name == 'nothing'").dataframe() is None
    assert isinstance(df, pd.DataFrame)


def test_aim_call_forms(three_runs):
    repo, hashes = three_runs
    from aim.sdk.types import QueryReportMode
    disabled = QueryReportMode.DISABLED
    assert [i.run.hash for i in repo.query_runs('run.run_index >= 0', disabled).iter_runs()] \
        == list(reversed(hashes))
    assert len(list(repo.query_metrics("metric.name == 'acc'", disabled).iter())) == 3
    assert len(list(repo.query_metrics("metric.name == 'acc'", report_mode=disabled))) == 3
    after = repo.query_runs('run.run_index >= 0', offset=hashes[2])
    assert [i.run.hash for i in after] == [hashes[1], hashes[0]]
