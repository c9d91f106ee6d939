"""The verified AimQL examples of reference §2.5, on the same three runs.

Aim's results are kept where they are right; where Aim fails (string methods on params,
missing context keys raising) the test asserts the right answer.
"""
import pytest

from aim.errors import QueryError

RUN_QUERIES = [
    # (query, expected run indices in result order: newest first)
    ('run.hparams.lr > 0.005', [2, 1]),
    ("run['hparams']['lr'] > 0.005", [2, 1]),
    ("run['hparams','lr'] == 0.01", [1]),
    ("run['hparams'].lr == 0.01", [1]),
    ("run.experiment == 'exp1'", [1, 0]),
    ("run.hparams.optimizer == 'adam' and run.hparams.batch_size >= 64", [2]),
    ("run.hparams.optimizer in ['sgd', 'rmsprop']", [1]),
    ("'mni' in run.dataset", [1]),
    # Aim: [] and a warning "'Undefined' object is not callable" (a known bug)
    ("run.dataset.startswith('cif')", [2, 0]),
    ("str(run.dataset).startswith('cif')", [2, 0]),
    # Aim: [] (a missing nested key is `Undefined`); here the None rule: missing is None
    ('run.hparams.missing == None', [2, 1, 0]),
    ("run.hparams.missing != 'adam'", [2, 1, 0]),
    ("'baseline' in run.tags", [0]),
    ("any(t == 'tuned' for t in run.tags)", [2, 1]),
    ('run.created_at > datetime.now() - timedelta(days=1)', [2, 1, 0]),
    ('run.duration < 1000', [2, 1, 0]),
    ('run.active', []),
    ('run.end_time is not None', [2, 1, 0]),
    ("run.metrics['loss', {'subset': 'train'}].max > 2", [2]),
    ('math.log10(run.hparams.lr) < -1.5', [1, 0]),
    ('run.hparams.lr * 10 > 0.5', [2]),
    ('SELECT loss IF run.hparams.lr > 0.05', [2]),
    ("run.experiment.name != 'x'", [2, 1, 0]),
    ('run.hparams.lr in set([0.01, 0.1])', [2, 1]),
    ('[x for x in [1, 2]] == [1, 2]', [2, 1, 0]),
    ('', [2, 1, 0]),
]

METRIC_QUERIES = [
    ("metric.name == 'loss'", [(2, 'loss'), (1, 'loss'), (0, 'loss')]),
    # Aim: the same three, plus a warning for every series without 'subset'
    ("metric.context.subset == 'val'", [(2, 'acc'), (1, 'acc'), (0, 'acc')]),
    ("metric.context['subset'] == 'train' and run.hparams.lr < 0.05",
     [(1, 'loss'), (0, 'loss')]),
    ('metric.last_step == 8', []),
    ("metric.first_step == 0 and metric.name == 'acc'", [(2, 'acc'), (1, 'acc'), (0, 'acc')]),
    ('metric.context == {}', [(2, 'int_metric'), (1, 'int_metric'), (0, 'int_metric')]),
    ('not metric.context', [(2, 'int_metric'), (1, 'int_metric'), (0, 'int_metric')]),
    # the seed reference's form
    ("metric = 'loss' and context['subset'] = 'train'", [(2, 'loss'), (1, 'loss'), (0, 'loss')]),
    ("metric.run.hparams.optimizer == 'sgd' and metric.name == 'acc'", [(1, 'acc')]),
    ("metric.name == 'acc' and metric.last == 0.5", [(2, 'acc'), (1, 'acc'), (0, 'acc')]),
    ("metric.name == 'loss' and run.hparams.batch_size == None", []),
]


@pytest.fixture(scope='module')
def ql_repo(tmp_path_factory):
    from aim import Repo, Run
    path = str(tmp_path_factory.mktemp('aimql'))
    repo = Repo(path, init=True)
    specs = [
        {'hp': {'lr': .001, 'optimizer': 'adam', 'batch_size': 32}, 'dataset': 'cifar10',
         'tag': 'baseline', 'exp': 'exp1', 'only_first': True},
        {'hp': {'lr': .01, 'optimizer': 'sgd', 'batch_size': 64}, 'dataset': 'mnist',
         'tag': 'tuned', 'exp': 'exp1'},
        {'hp': {'lr': .1, 'optimizer': 'adam', 'batch_size': 128}, 'dataset': 'cifar10',
         'tag': 'tuned', 'exp': 'exp2'},
    ]
    hashes = []
    for i, spec in enumerate(specs):
        with Run(repo=repo, experiment=spec['exp'], system_tracking_interval=None,
                 capture_terminal_logs=False) as run:
            run['hparams'] = spec['hp']
            run['dataset'] = spec['dataset']
            run.add_tag(spec['tag'])
            if spec.get('only_first'):
                run['only_first'] = True
            for step in range(10):
                run.track(i + step * 0.1, name='loss', context={'subset': 'train'})
            for step in range(5):
                run.track(0.5, name='acc', context={'subset': 'val'})
            run.track(1, name='int_metric')
        hashes.append(run.hash)
    return repo, hashes


@pytest.mark.parametrize('query, expected', RUN_QUERIES)
def test_run_query(ql_repo, query, expected, recwarn):
    repo, hashes = ql_repo
    got = [hashes.index(item.run.hash) for item in repo.query_runs(query)]
    assert got == expected
    assert not [w for w in recwarn if 'query' in str(w.message)]   # no per-run warnings


@pytest.mark.parametrize('query, expected', METRIC_QUERIES)
def test_metric_query(ql_repo, query, expected):
    repo, hashes = ql_repo
    got = [(hashes.index(m.run.hash), m.name) for m in repo.query_metrics(query)]
    assert got == expected


def test_hash_prefix_query(ql_repo):
    repo, hashes = ql_repo
    prefix = hashes[0][:4]
    got = [item.run.hash for item in repo.query_runs(f"run.hash.startswith('{prefix}')")]
    assert got == [h for h in hashes[::-1] if h.startswith(prefix)]


def test_archived_runs_are_hidden_unless_the_query_mentions_archived(tmp_path):
    from aim import Repo, Run
    repo = Repo(str(tmp_path), init=True)
    kept = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    hidden = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    hidden.archived = True
    kept.close()
    hidden.close()
    assert [i.run.hash for i in repo.query_runs('')] == [kept.hash]
    assert [i.run.hash for i in repo.query_runs('run.archived == True')] == [hidden.hash]
    assert len(list(repo.query_runs('run.archived or not run.archived'))) == 2


@pytest.mark.parametrize('query', ['run.hparams.lr > 0 && run.x', 'run.hparams.__class__',
                                   "__import__('os')", "'{}'.format(1) == '1'",
                                   "run.hparams.lr ==", "import os"])
def test_refused_queries_raise_at_once(ql_repo, query):
    repo, _ = ql_repo
    with pytest.raises(QueryError):
        list(repo.query_runs(query))
    with pytest.raises(QueryError):
        list(repo.query_metrics(query))


@pytest.mark.parametrize('query', ['run.hparams.lr > 0 && run.x', 'run.hparams.lr =='])
def test_query_syntax_error_is_a_syntax_error_too(ql_repo, query):
    # Aim raises SyntaxError; scripts written for Aim catch that
    repo, _ = ql_repo
    with pytest.raises(SyntaxError):
        repo.query_runs(query)


# Aim: `run.missing == None` is True for a missing top-level key (SafeNone) but False for a
# missing nested key, and `is None` is always False. Here a missing key at any depth is
# *undefined*, which is None to ==, !=, is and is not (the None rule, docs/query-language.md):
# `== None` and `is None` both ask "missing or null".
@pytest.mark.parametrize('query, expected', [('run.only_first == None', [2, 1]),
                                             ('run.missing == None', [2, 1, 0]),
                                             ('run.only_first != None', [0]),
                                             ('run.missing is not None', [])])
def test_missing_param_equals_none(ql_repo, query, expected):
    repo, hashes = ql_repo
    assert [hashes.index(i.run.hash) for i in repo.query_runs(query)] == expected


def test_missing_param_is_none_means_absent(ql_repo):
    # here `is None` asks "missing or null" (Aim: always False)
    repo, hashes = ql_repo
    got = [hashes.index(i.run.hash) for i in repo.query_runs('run.only_first is None')]
    assert got == [2, 1]
