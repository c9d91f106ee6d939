"""search_runs: MLflow's filter syntax and order_by, compared with MLflow's own server on
the same runs (when the full mlflow package is installed), and pagination."""
from __future__ import annotations

import math

import pytest

START = 1_750_000_000_000

CASES = [
    ('', []),
    ('metrics.loss < 0.5', []),
    ('metrics.loss >= 0.5', ['metrics.loss ASC']),
    ('metrics.loss != 0.25', ['metrics.loss DESC']),
    ("params.optimizer = 'adam'", ['params.lr ASC']),
    ("params.optimizer != 'adam'", []),
    ("params.optimizer = 'sgd'", ['attributes.start_time ASC']),
    ("params.lr LIKE '0.0%'", []),
    ("params.optimizer ILIKE 'ADA%'", []),
    ("tags.team = 'vision'", ['metrics.acc DESC']),
    ("tags.team LIKE '%o%' AND metrics.acc > 0.3", []),
    ("attributes.status = 'FINISHED'", []),
    ("attributes.status != 'FINISHED'", []),
    ("attributes.run_name LIKE 'run-1%'", ['attributes.run_name DESC']),
    ("run_name = 'run-3'", []),
    ('attributes.start_time > 1750000010000', []),
    ("metrics.acc > 0.2 AND params.optimizer = 'sgd' AND tags.team != 'nlp'", []),
    ('metrics."loss" <= 0.1', []),
    ('metrics.`acc` > 0.5', ['metrics.`acc` ASC']),
    ('', ['metrics.acc ASC']),
    ('', ['metrics.acc DESC', 'params.optimizer ASC']),
    ('', ['params.optimizer DESC', 'metrics.loss ASC']),
    ('', ['tags.team ASC']),
    ('', ['attributes.run_name ASC']),
    ('', ['attributes.end_time DESC']),
    ('params.missing IS NULL', []),
    ('tags.team IS NOT NULL', ['attributes.run_name ASC']),
]


def _populate(client, name: str) -> str:
    from mlflow.entities import Metric, Param, RunTag
    exp = client.create_experiment(name)
    optimizers = ['adam', 'sgd', 'rmsprop', 'adamw']
    teams = ['vision', 'nlp', 'robotics', None]
    for i in range(24):
        run = client.create_run(exp, run_name=f'run-{i}', start_time=START + i * 1000)
        rid = run.info.run_id
        params = [Param('optimizer', optimizers[i % 4]), Param('lr', str(0.1 / (i + 1)))]
        tags = [RunTag('team', teams[i % 4])] if teams[i % 4] else []
        loss = 1.0 / (i + 1) if i % 5 else (math.nan if i == 10 else 0.25)
        metrics = [Metric('loss', loss, START + i * 1000 + 10, 0)]
        if i % 3:
            metrics.append(Metric('acc', (i % 7) / 7.0, START + i * 1000 + 20, 3))
        client.log_batch(rid, metrics=metrics, params=params, tags=tags)
        if i % 6 == 0:
            continue    # left RUNNING
        client.set_terminated(rid, status='FINISHED' if i % 4 else 'FAILED',
                          end_time=START + i * 1000 + 500)
    return exp


def _names(client, exp, filter_string, order_by, **kw):
    runs = client.search_runs([exp], filter_string=filter_string, order_by=order_by,
                              max_results=1000, **kw)
    return [r.info.run_name for r in runs]


@pytest.fixture(scope='module')
def both(aimkit_server, mlflow_own_server):
    from mlflow import MlflowClient
    ours = MlflowClient(tracking_uri=aimkit_server.url)
    theirs = MlflowClient(tracking_uri=mlflow_own_server)
    return (ours, _populate(ours, 'search-compare')), (theirs, _populate(theirs,
                                                                         'search-compare'))


@pytest.mark.parametrize('filter_string,order_by', CASES)
def test_search_runs_matches_mlflows_own_server(both, filter_string, order_by):
    (ours, exp_ours), (theirs, exp_theirs) = both
    expected = _names(theirs, exp_theirs, filter_string, order_by)
    assert _names(ours, exp_ours, filter_string, order_by) == expected


def test_search_runs_expected_results_without_mlflows_server(aimkit_mlflow):
    """The same data, checked against results worked out by hand (runs where MLflow's own
    server cannot start too)."""
    from mlflow import MlflowClient
    client = MlflowClient()
    exp = _populate(client, 'search-by-hand')
    assert _names(client, exp, '', []) == [f'run-{i}' for i in range(23, -1, -1)]
    assert _names(client, exp, "params.optimizer = 'sgd'", ['metrics.loss ASC']) == \
        ['run-21', 'run-17', 'run-13', 'run-9', 'run-5', 'run-1']
    assert _names(client, exp, 'metrics.acc > 0.8', []) == ['run-20', 'run-13']
    assert _names(client, exp, "attributes.status = 'RUNNING'", []) == \
        ['run-18', 'run-12', 'run-6', 'run-0']
    assert _names(client, exp, "tags.team = 'nlp' AND metrics.loss < 0.1", []) == \
        ['run-21', 'run-17', 'run-13']
    assert _names(client, exp, '', ['metrics.acc DESC'])[:3] == ['run-20', 'run-13', 'run-19']
    # IN is accepted for params and tags too (MLflow's server takes it for run_id only)
    assert _names(client, exp, "params.optimizer IN ('sgd', 'rmsprop') AND tags.team "
                               "NOT IN ('nlp')", []) == [f'run-{i}' for i in (22, 18, 14, 10, 6, 2)]
    assert _names(client, exp, '', ['metrics.acc DESC'])[-8:] == \
        ['run-21', 'run-18', 'run-15', 'run-12', 'run-9', 'run-6', 'run-3', 'run-0']


def test_search_runs_pages(aimkit_mlflow):
    from mlflow import MlflowClient
    client = MlflowClient()
    exp = _populate(client, 'search-pages')
    seen, token = [], None
    while True:
        page = client.search_runs([exp], order_by=['params.lr ASC'], max_results=5,
                                  page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    assert seen == _names(client, exp, '', ['params.lr ASC'])
    assert len(seen) == 24
    import mlflow
    df = mlflow.search_runs([exp], filter_string="params.optimizer = 'adam'")
    assert sorted(df['tags.mlflow.runName']) == sorted(f'run-{i}' for i in range(0, 24, 4))


@pytest.mark.parametrize('bad,why', [
    ('metrics.loss < ', 'expected a quoted string or a number'),
    ("metrics.loss < 'a'", 'compared with a number'),
    ('params.lr > 1', 'does not apply'),
    ("params.lr = 'a' OR params.lr = 'b'", 'OR is not supported'),
    ("foo.bar = 'x'", 'not one of metrics, params, tags'),
    ("attributes.colour = 'red'", 'not a searchable attribute'),
])
def test_bad_filters_answer_invalid_parameter_value(aimkit_mlflow, bad, why):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    client = MlflowClient()
    with pytest.raises(MlflowException) as info:
        client.search_runs(['0'], filter_string=bad)
    assert info.value.error_code == 'INVALID_PARAMETER_VALUE'
    assert why in info.value.message


def _history_script(client, exp) -> str:
    """Values logged again at a step they already hold: without step= (MLflow's client
    sends step 0), at a step logged before in the same batch and in an earlier one, and at
    a step before the metric's last."""
    from mlflow.entities import Metric
    rid = client.create_run(exp, run_name='repeats', start_time=START).info.run_id
    for i in range(5):
        client.log_metric(rid, 'no_step', 0.5 + i, timestamp=START + i)   # all at step 0
    client.log_batch(rid, metrics=[Metric('loss', 1.0, START + 10, 0),
                                   Metric('loss', 2.0, START + 11, 1),
                                   Metric('loss', 3.0, START + 12, 1),    # step 1 again
                                   Metric('loss', 4.0, START + 13, 5)])
    client.log_batch(rid, metrics=[Metric('loss', 5.0, START + 14, 5),    # the last step
                                   Metric('loss', 6.0, START + 15, 0),    # an early one
                                   Metric('loss', 7.0, START + 16, 3)])   # a new step
    client.log_metric(rid, 'loss', float('nan'), timestamp=START + 17, step=5)
    client.log_metric(rid, 'late', 1.0, timestamp=START + 20, step=5)    # no step repeated,
    client.log_metric(rid, 'late', 2.0, timestamp=START + 21, step=3)    # later in time
    return rid


def _history(client, rid, key):
    return [(m.step, m.timestamp, m.value if m.value == m.value else 'nan')
            for m in client.get_metric_history(rid, key)]


def test_values_logged_again_at_a_step_are_all_kept(both, aimkit_server):
    """MLflow keeps every value logged at a step; aimkit's series keeps the last, and the
    ones it replaced go to the metric's {"mlflow": "replaced"} series, so MLflow's client
    reads the same history from both servers and the Aim SDK sees both series."""
    (ours, exp_ours), (theirs, exp_theirs) = both
    rid_ours = _history_script(ours, exp_ours)
    rid_theirs = _history_script(theirs, exp_theirs)
    for key in ('no_step', 'loss', 'late'):
        assert _history(ours, rid_ours, key) == _history(theirs, rid_theirs, key)
    assert len(_history(ours, rid_ours, 'no_step')) == 5
    assert len(_history(ours, rid_ours, 'loss')) == 8
    # the latest values, as MLflow shows them
    mine, their = ours.get_run(rid_ours).data.metrics, theirs.get_run(rid_theirs).data.metrics
    assert mine['no_step'] == their['no_step'] == 4.5
    assert set(mine) == set(their) == {'no_step', 'loss', 'late'}
    assert mine['loss'] != mine['loss'] and their['loss'] != their['loss']   # NaN at step 5

    from aim import Repo
    run = Repo(aimkit_server.repo).get_run(rid_ours)
    no_step = run.get_metric('no_step', {})
    assert list(no_step.steps) == [0] and list(no_step.values.values_numpy()) == [4.5]
    replaced = run.get_metric('no_step', {'mlflow': 'replaced'})
    assert list(replaced.values.values_numpy()) == [0.5, 1.5, 2.5, 3.5]
    assert list(replaced.epochs) == [0, 0, 0, 0]
    loss = run.get_metric('loss', {})
    assert list(loss.steps) == [0, 1, 3, 5]
    assert list(loss.values.values_numpy())[:3] == [6.0, 3.0, 7.0]
    replaced = run.get_metric('loss', {'mlflow': 'replaced'})
    assert list(replaced.values.values_numpy()) == [2.0, 4.0, 1.0, 5.0]
    assert list(replaced.epochs) == [1, 5, 0, 5]
