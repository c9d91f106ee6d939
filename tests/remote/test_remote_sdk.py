"""The whole SDK through ``aim://``, as Aim's documentation uses it, against a real server.

One ``aim server`` serves the module (the token and TLS servers start when a test first
asks for them); every test makes runs of its own and finds them by hash or by a unique
experiment name, so no test depends on another's runs. Where it is cheap, a scenario runs
against a local repository too and both results are compared.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pytest

from aim import Repo, Run
from aim.errors import (
    MissingRunError,
    ReadOnlyRunError,
    RemoteAuthError,
    RemoteConnectionError,
    RunLockedError,
    TrackInputError,
)
from aim.ql.errors import QuerySyntaxError
from tests.remote.server_process import REPO_ROOT, AimServer

TOKEN = 'sdk-secret-0123456789abcdef'


# --- fixtures -------------------------------------------------------------------------------
def _start_server(tmp_path_factory, repo: str | None = None, **kwargs) -> AimServer:
    workdir = str(tmp_path_factory.mktemp('aim-server'))
    if repo is None:
        repo = os.path.join(workdir, 'repo')
        os.makedirs(repo)
        Repo(repo, init=True).close()
    return AimServer(repo, workdir, **kwargs).start()


@pytest.fixture(scope='module', params=['sqlite', 'postgresql'])
def server(request, tmp_path_factory):
    """A server over each backend: a repository directory, a PostgreSQL database."""
    repo = None
    if request.param == 'postgresql':
        from tests.pg.cluster import create_database_from_template
        repo = create_database_from_template(request.getfixturevalue('pg_cluster'),
                                             'aim_remote_sdk')
    s = _start_server(tmp_path_factory, repo)
    yield s
    s.stop()


@pytest.fixture(scope='module')
def token_server(tmp_path_factory):
    s = _start_server(tmp_path_factory, tokens={'sdk': TOKEN})
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _spool(tmp_path, monkeypatch):
    """A spool of the test's own; the sender gives up quickly on a server that is gone."""
    monkeypatch.setenv('AIM_SPOOL_DIR', str(tmp_path / 'spool'))
    monkeypatch.setenv('AIM_REMOTE_CLOSE_TIMEOUT_S', '5')
    return tmp_path / 'spool'


@pytest.fixture
def url(server) -> str:
    return server.url


@pytest.fixture
def remote(url) -> Repo:
    return Repo.from_path(url)


@pytest.fixture
def local(tmp_path) -> Repo:
    return Repo(str(tmp_path / 'local'), init=True)


@pytest.fixture
def new_run(url):
    """``Run(repo=url, ...)`` with side channels off; every run is closed after the test."""
    runs: list[Run] = []

    def make(*args, **kwargs) -> Run:
        kwargs.setdefault('repo', url)
        kwargs.setdefault('system_tracking_interval', None)
        kwargs.setdefault('capture_terminal_logs', False)
        run = Run(*args, **kwargs)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.close()


def unique(prefix: str = 'exp') -> str:
    return f'{prefix}-{uuid.uuid4().hex[:10]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# --- one scenario, a local and a remote repository ------------------------------------------
def documented_scenario(repo, experiment: str) -> str:
    """What a script written from Aim's documentation does; returns the run's hash."""
    run = Run(repo=repo, experiment=experiment, system_tracking_interval=None,
              capture_terminal_logs=False)
    run['hparams'] = {'lr': 0.01, 'batch_size': 32, 'opt': {'name': 'adam', 'betas': [0.9, 0.99]}}
    run['hparams', 'dropout'] = 0.25
    run.set(('hparams', 'opt', 'eps'), 1e-8)
    run['seed'] = 7
    run['scratch'] = {'gone': True}
    del run['scratch']
    run['hparams', 'tmp'] = 'x'
    del run['hparams', 'tmp']
    run.name = 'documented'
    run.description = 'the same script twice'
    run.add_tag('first')
    run.add_tag('second')
    run.remove_tag('first')
    for i in range(6):
        run.track(i * 0.5, name='loss', step=i, epoch=i // 3, context={'subset': 'train'})
        run.track(10 - i, name='loss', step=i, context={'subset': 'val'})
    run.track(1.0, name='auto')                 # step=None: 0, 1, then after the last step
    run.track(2.0, name='auto')
    run.track(3.0, name='auto', step=10)
    run.track(4.0, name='auto')
    run.track({'acc': 0.5, 'f1': 2}, step=3, context={'k': 1})
    run.track({'acc': 0.75, 'f1': 3}, step=4, context={'k': 1})
    run.track(np.float32(0.5), name='np', step=0)
    run.track(np.float64(1.5), name='np', step=1)
    run.track(np.int64(3), name='np_int', step=0)
    run.track(np.int32(-4), name='np_int', step=1)
    run.track(2 ** 63 - 1, name='big', step=0)
    run_hash = run.hash
    run.close()
    return run_hash


def snapshot(run: Run) -> dict:
    """What a reader sees of a run: params, props and every series."""
    series = {}
    for m in run.metrics():
        steps, values = m.values.sparse_numpy()
        series[(m.name, tuple(sorted(m.context.to_dict().items())))] = (
            steps.tolist(), m.values.values_list(),
            [None if e != e else e for e in m.epochs.tolist()], m.values.last())  # NaN: none
    return {'hparams': run['hparams'], 'seed': run['seed'], 'has_scratch': 'scratch' in run,
            'name': run.name, 'description': run.description, 'tags': list(run.tags),
            'archived': run.archived, 'series': series}


def test_the_documented_script_reads_back_the_same_as_on_a_local_repository(remote, local):
    experiment = unique()
    seen = {}
    for where, repo in (('local', local), ('remote', remote)):
        run_hash = documented_scenario(repo.root_path, experiment)
        seen[where] = snapshot(Run(run_hash, repo=repo.root_path, read_only=True))
        assert seen[where] == snapshot(repo.get_run(run_hash))
    assert seen['remote'] == seen['local']
    typed = {where: {key: [type(v).__name__ for v in value[1]]
                     for key, value in seen[where]['series'].items()} for where in seen}
    assert typed['remote'] == typed['local']    # an int series stays int, floats float
    series = seen['remote']['series']
    assert seen['remote']['hparams'] == {'lr': 0.01, 'batch_size': 32, 'dropout': 0.25,
                                         'opt': {'name': 'adam', 'betas': [0.9, 0.99],
                                                 'eps': 1e-8}}
    assert series[('auto', ())][:2] == ([0, 1, 10, 11], [1.0, 2.0, 3.0, 4.0])
    assert series[('acc', (('k', 1),))][:2] == ([3, 4], [0.5, 0.75])
    assert series[('f1', (('k', 1),))][1] == [2, 3]
    assert series[('loss', (('subset', 'train'),))][2] == [0, 0, 0, 1, 1, 1]
    assert series[('np', ())][1] == [0.5, 1.5]
    assert series[('np_int', ())][1] == [3, -4]
    assert all(type(v) is int for v in series[('np_int', ())][1])
    assert series[('big', ())][1] == [2 ** 63 - 1]


# --- params ---------------------------------------------------------------------------------
def test_params_read_back_on_the_live_run_and_after_reopening(new_run, url):
    run = new_run()
    run['hparams'] = {'lr': 0.1, 'layers': {'n': 3, 'sizes': [64, 32]}}
    run['hparams', 'layers', 'act'] = 'relu'
    run.set('notes', 'plain')
    run['x'] = 1
    assert run['hparams'] == {'lr': 0.1, 'layers': {'n': 3, 'sizes': [64, 32], 'act': 'relu'}}
    assert run['hparams', 'layers', 'sizes'] == [64, 32]
    assert run.get(('hparams', 'missing'), 'dflt') == 'dflt'
    del run['x']
    assert 'x' not in run
    with pytest.raises(KeyError):
        run['x']
    run.close()
    again = Run(run.hash, repo=url, read_only=True)
    assert again['hparams']['layers']['act'] == 'relu' and again['notes'] == 'plain'
    assert 'x' not in again and again.get('x') is None
    with pytest.raises(KeyError):
        again['x']


# --- props ----------------------------------------------------------------------------------
def test_props_on_the_live_run_and_after_reopening(new_run, url, remote):
    experiment = unique()
    run = new_run(experiment=experiment)
    assert run.experiment == experiment and run.name == f'Run: {run.hash}'
    run.name = 'renamed'
    run.description = 'about it'
    run.experiment = experiment + '-b'
    run.archived = True
    run.add_tag('a')
    run.add_tag('b')
    assert run.remove_tag('a') is True and run.remove_tag('never') is False
    assert run.tags == ['b'] and run.archived is True
    assert run.props.name == 'renamed'
    run.flush()
    live_view = remote.get_run(run.hash)       # what the server has while the run lives
    assert (live_view.name, live_view.description, live_view.experiment, live_view.archived,
            list(live_view.tags)) == ('renamed', 'about it', experiment + '-b', True, ['b'])
    run.archived = False
    run.close()
    again = Run(run.hash, repo=url, read_only=True)
    assert (again.name, again.description, again.experiment, again.archived,
            list(again.tags)) == ('renamed', 'about it', experiment + '-b', False, ['b'])
    assert again.creation_time == pytest.approx(run.creation_time)


def test_active_and_end_time(new_run, remote):
    run = new_run()
    run.track(1, name='x')
    run.flush()
    assert run.active and run.end_time is None
    assert remote.get_run(run.hash).active
    assert run.hash in remote.list_active_runs()
    before = time.time()
    run.close()
    assert not run.active and before - 1 <= run.end_time <= time.time() + 1
    reread = remote.get_run(run.hash)
    assert not reread.active and reread.end_time == pytest.approx(run.end_time)
    assert run.hash not in remote.list_active_runs()


# --- track() --------------------------------------------------------------------------------
def test_track_forms_on_the_live_run(new_run):
    run = new_run()
    run.track(0.5, name='m', step=0, epoch=1, context={'subset': 'train'})
    run.track(1, name='m', step=1, epoch=1, context={'subset': 'train'})
    run.track(7, name='steps')
    run.track(8, name='steps')
    run.track({'a': 1, 'b': 2.0}, step=5)
    run.track({'a': 3, 'b': 4.0}, step=6, context={'c': True})
    run.track(np.float16(0.25), name='np')
    run.track(np.array(0.75), name='np')
    m = run.get_metric('m', {'subset': 'train'})
    assert m.values.values_list() == [0.5, 1.0] and m.epochs.tolist() == [1, 1]
    assert run.get_metric('m') is None
    assert run.get_metric('steps').steps.tolist() == [0, 1]
    assert run.get_metric('a').values.values_list() == [1]
    assert run.get_metric('a', {'c': True}).values.last() == (6, 3)
    assert run.get_metric('np').values.values_list() == [0.25, 0.75]
    assert {(m.name, tuple(m.context.to_dict().items())) for m in run.metrics()} == {
        ('m', (('subset', 'train'),)), ('steps', ()), ('a', ()), ('b', ()),
        ('a', (('c', True),)), ('b', (('c', True),)), ('np', ())}


@pytest.mark.parametrize('kwargs', [
    dict(value='text', name='bad'),
    dict(value=1.0, name=''),
    dict(value=1.0, name='bad', step='one'),
    dict(value=1.0, name='bad', context={'k': object()}),
    dict(value=np.complex128(1 + 2j), name='bad'),
    dict(value=1.0, name='\ud800'),
], ids=['str-value', 'empty-name', 'str-step', 'object-context', 'complex', 'surrogate'])
def test_bad_track_input_raises_at_the_call_and_ships_nothing(new_run, remote, kwargs):
    run = new_run()
    with pytest.raises(TrackInputError):
        run.track(**kwargs)
    run.track(1.0, name='good')
    run.close()
    assert [m.name for m in remote.get_run(run.hash).metrics()] == ['good']


# --- reopening ------------------------------------------------------------------------------
def test_resume_by_hash_continues_the_steps_and_keeps_the_params(new_run, url, remote):
    first = new_run(experiment=unique())
    first['hparams'] = {'lr': 0.5}
    first.track(1.0, name='loss')
    first.track(2.0, name='loss')
    first.close()
    resumed = new_run(run_hash=first.hash)
    assert resumed['hparams'] == {'lr': 0.5} and resumed.name == first.name
    resumed.track(3.0, name='loss')               # step=None continues after step 1
    resumed['more'] = 1
    resumed.close()
    run = remote.get_run(first.hash)
    assert run.get_metric('loss').steps.tolist() == [0, 1, 2]
    assert run.get_metric('loss').values.values_list() == [1.0, 2.0, 3.0]
    assert run['hparams'] == {'lr': 0.5} and run['more'] == 1
    assert remote.list_all_runs().count(first.hash) == 1


def test_resume_by_hash_keeps_the_experiment(new_run, remote):
    experiment = unique()
    first = new_run(experiment=experiment)
    first.close()
    resumed = new_run(run_hash=first.hash)
    resumed.close()
    assert remote.get_run(first.hash).experiment == experiment
    assert resumed.experiment == experiment


CHILD = textwrap.dedent('''
    import sys
    from aim import Run
    run = Run(repo=sys.argv[1], system_tracking_interval=None, capture_terminal_logs=True)
    run['who'] = 'child'
    print('hello from the child', flush=True)
    run.track(1.0, name='child')
    run.flush()
    print('HASH', run.hash, flush=True)
    sys.stdin.readline()
    run.close()
''')


def test_a_run_another_client_writes_is_locked_and_its_terminal_logs_arrive(
        url, remote, tmp_path, child_env):
    script = tmp_path / 'child.py'
    script.write_text(CHILD)
    child_env['AIM_SPOOL_DIR'] = str(tmp_path / 'child-spool')
    proc = subprocess.Popen([sys.executable, str(script), url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env, cwd=REPO_ROOT)
    try:
        line = ''
        while not line.startswith('HASH'):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
        run_hash = line.split()[1]
        with pytest.raises(RunLockedError) as caught:
            Run(run_hash, repo=url, system_tracking_interval=None, capture_terminal_logs=False)
        assert caught.value.run_hash == run_hash and 'read_only=True' in str(caught.value)
        reader = Run(run_hash, repo=url, read_only=True)   # reading is fine meanwhile
        assert reader['who'] == 'child' and reader.active
        with pytest.raises(ReadOnlyRunError):
            reader.track(1.0, name='x')
        proc.stdin.write('\n')
        proc.stdin.flush()
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = remote.get_run(run_hash)
    assert not done.active
    assert 'hello from the child' in list(done.get_terminal_logs())
    assert done.get_metric('child').values.values_list() == [1.0]


def test_a_new_run_with_a_chosen_hash(new_run, remote, local):
    for repo in (local, remote):
        chosen = unique('chosen')
        run = new_run(run_hash=chosen, repo=repo.root_path)
        run.track(1, name='m')
        run.close()
        assert repo.get_run(chosen).get_metric('m').values.values_list() == [1]
        assert repo.get_run(chosen).experiment == 'default'


def test_read_only_reopen_and_missing_runs(new_run, url, remote):
    run = new_run()
    run['p'] = {'q': 1}
    run.track(5, name='v', step=3)
    run.close()
    ro = Run(run.hash, repo=url, read_only=True)
    assert ro['p'] == {'q': 1} and ro.get_metric('v').values.last() == (3, 5)
    with pytest.raises(ReadOnlyRunError):
        ro['p'] = 2
    with pytest.raises(ReadOnlyRunError):
        ro.track(1, name='v')
    missing = 'f' * 24
    assert remote.get_run(missing) is None
    with pytest.raises(MissingRunError):
        Run(missing, repo=url, read_only=True)


# --- the repository -------------------------------------------------------------------------
def quick_start(repo) -> str:
    """The seed reference's quick start (Run, params, ordinals)."""
    run = Run(repo=repo, experiment=unique('quick'), system_tracking_interval=None,
              capture_terminal_logs=False)
    run['params'] = {'foo': 'bar'}
    for i in range(100):
        run.track(i, step=i, name='ordinals', context={})
        run.track(-i, step=i, name='negative integers', context={})
        if i % 2 == 0:
            run.track(i, step=i, name='ordinals', context={'odds': True})
    run.close()
    return run.hash


QUICK_QUERY = '''
metric.run.params.foo == 'bar' and metric = 'ordinals' and context['odds'] = True
'''


def test_the_quick_start_query_as_on_a_local_repository(remote, local):
    found = {}
    for where, repo in (('local', local), ('remote', remote)):
        run_hash = quick_start(repo.root_path)
        traces = [t for t in repo.traces(query=QUICK_QUERY) if t.run.hash == run_hash]
        assert len(traces) == 1
        found[where] = traces[0].values.values_list()
        runs = [item.run.hash for item in repo.query_runs("run.params.foo == 'bar'")]
        assert run_hash in runs
    assert found['remote'] == found['local'] == list(range(0, 100, 2))


def test_queries_and_metric_values(new_run, remote):
    experiment = unique()
    hashes = []
    for lr in (0.1, 0.2, 0.3):
        run = new_run(experiment=experiment)
        run['hparams'] = {'lr': lr}
        for step in range(4):
            run.track(lr * step, name='loss', step=step, context={'subset': 'train'})
        run.track(lr, name='acc', step=0)
        run.close()
        hashes.append(run.hash)
    q = f"run.experiment == '{experiment}' and run.hparams.lr > 0.15"
    assert {item.run.hash for item in remote.query_runs(q)} == set(hashes[1:])
    assert {item.run.hash for item in remote.query_runs(q).iter_runs()} == set(hashes[1:])
    assert set(remote.query_runs(q).hashes()) == set(hashes[1:])
    newest_first = [item.run.hash for item in
                    remote.query_runs(f"run.experiment == '{experiment}'")]
    assert newest_first == hashes[::-1]
    metrics = list(remote.query_metrics(
        f"run.experiment == '{experiment}' and metric.name == 'loss' "
        f"and metric.context.subset == 'train'"))
    assert {m.run.hash for m in metrics} == set(hashes)
    for m in metrics:
        lr = m.run['hparams']['lr']
        steps, values = m.values.sparse_numpy()
        assert steps.tolist() == [0, 1, 2, 3]
        assert values.tolist() == pytest.approx([lr * s for s in range(4)])
        assert m.values.last() == (3, pytest.approx(lr * 3))
        assert m.context.to_dict() == {'subset': 'train'}
    by_run = list(remote.query_metrics(f"run.experiment == '{experiment}'").iter_runs())
    assert len(by_run) == 3 and all(len(list(item)) == 2 for item in by_run)
    one = remote.get_run(hashes[0])
    assert [m.name for m in one.metrics()] == ['acc', 'loss']
    assert one.get_metric('loss', {'subset': 'train'}).values.values_list() == \
        pytest.approx([0, 0.1, 0.2, 0.3])
    assert one.get_metric('loss') is None

    collected = remote.collect_metrics()
    assert {'subset': 'train'} in collected['loss'] and {} in collected['acc']
    assert 'lr' in remote.collect_params()['hparams']
    assert set(hashes) <= {run.hash for run in remote.iter_runs()}
    assert set(hashes) <= set(remote.list_all_runs())
    assert remote.total_runs_count() == len(remote.list_all_runs())


def test_queries_see_the_live_runs_of_this_process_without_a_flush(new_run, remote, local):
    for repo in (local, remote):
        experiment = unique()
        run = new_run(repo=repo.root_path, experiment=experiment)
        run['hparams'] = {'live': 1}
        run.track(2.5, name='live_m', step=4)
        q = f"run.experiment == '{experiment}' and run.hparams.live == 1"
        assert [item.run.hash for item in repo.query_runs(q)] == [run.hash], repo
        [metric] = repo.query_metrics(q + " and metric.name == 'live_m'")
        assert metric.values.last() == (4, 2.5)
        assert metric.run.active


def test_archived_runs_are_queried_as_on_a_local_repository(new_run, remote, local):
    found = {}
    for where, repo in (('local', local), ('remote', remote)):
        experiment = unique()
        kept, archived = (new_run(repo=repo.root_path, experiment=experiment)
                          for _ in range(2))
        archived.archived = True
        kept.close()
        archived.close()
        names = {kept.hash: 'kept', archived.hash: 'archived'}
        found[where] = [
            sorted(names[i.run.hash] for i in repo.query_runs(f"run.experiment == '{experiment}'"
                                                              + extra))
            for extra in ('', ' and run.archived', ' and not run.archived')]
    assert found['remote'] == found['local']


def test_a_query_error_is_the_same_class_as_locally(remote, local):
    bad = 'run.hparams.lr >'
    errors = {}
    for where, repo in (('local', local), ('remote', remote)):
        with pytest.raises(QuerySyntaxError) as caught:
            list(repo.query_runs(bad))
        errors[where] = caught.value
        with pytest.raises(QuerySyntaxError):
            list(repo.query_metrics("metric.name == 'loss' and"))
    assert errors['remote'].position == errors['local'].position
    # the server's own answer to a bad query is translated to the same class
    with pytest.raises(QuerySyntaxError) as caught:
        remote._store.client.call('POST', '/query/runs', {'query': bad})
    assert caught.value.position == errors['local'].position


def test_delete_run(new_run, remote):
    run = new_run()
    run.track(1, name='x')
    run.close()
    assert remote.delete_run(run.hash) is True
    assert remote.get_run(run.hash) is None and run.hash not in remote.list_all_runs()
    assert remote.delete_run(run.hash) is False


def test_copy_and_move_runs_to_a_local_repository(new_run, remote, local):
    copied, moved = new_run(), new_run()
    for run, value in ((copied, 1.5), (moved, 2.5)):
        run['hparams'] = {'v': value}
        run.track(value, name='m', step=2, context={'c': 'x'})
        run.close()
    assert remote.copy_runs([copied.hash], local.root_path) == (True, [])
    assert remote.move_runs([moved.hash], local.root_path) == (True, [])
    for run, value in ((copied, 1.5), (moved, 2.5)):
        there = local.get_run(run.hash)
        assert there['hparams'] == {'v': value}
        assert there.get_metric('m', {'c': 'x'}).values.last() == (2, value)
    assert remote.get_run(copied.hash) is not None
    assert remote.get_run(moved.hash) is None


def test_copy_runs_from_a_local_repository_to_the_server(local, remote, url):
    with Run(repo=local, system_tracking_interval=None, capture_terminal_logs=False) as run:
        run['hparams'] = {'from': 'local'}
        run.name = 'made here'
        run.track(3.0, name='m', step=7)
    assert local.copy_runs([run.hash], url) == (True, [])
    there = remote.get_run(run.hash)
    assert there['hparams'] == {'from': 'local'} and there.name == 'made here'
    assert there.get_metric('m').values.last() == (7, 3.0)
    assert snapshot_basic(there) == snapshot_basic(local.get_run(run.hash))


def snapshot_basic(run: Run) -> tuple:
    return (run['hparams'], run.name, run.experiment, run.creation_time,
            [(m.name, m.values.values_list()) for m in run.metrics()])


# --- connections, tokens, TLS, offline ------------------------------------------------------
def test_a_closed_port_raises_one_connection_error_naming_the_url():
    url = f'aim://127.0.0.1:{free_port()}'
    started = time.monotonic()
    with pytest.raises(RemoteConnectionError) as caught:
        Run(repo=url, system_tracking_interval=None, capture_terminal_logs=False)
    assert time.monotonic() - started < 10
    assert url in str(caught.value) and caught.value.url == url
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    repo = Repo(url)
    for read in (lambda: repo.get_run('a' * 24), lambda: list(repo.query_runs('')),
                 repo.list_all_runs, repo.collect_params):
        with pytest.raises(RemoteConnectionError, match=url):
            read()


def test_an_offline_run_needs_no_server(_spool):
    url = f'aim://127.0.0.1:{free_port()}'
    with Run(repo=url, offline=True, system_tracking_interval=None,
             capture_terminal_logs=False) as run:
        run['hparams'] = {'a': 1}
        run.track(1.0, name='m')
        assert run['hparams'] == {'a': 1}
    assert len(os.listdir(_spool)) == 1


def test_a_token_server_refuses_a_run_without_the_token(token_server):
    with pytest.raises(RemoteAuthError) as caught:
        Run(repo=token_server.url, system_tracking_interval=None, capture_terminal_logs=False)
    assert 'AIM_REMOTE_TOKEN' in str(caught.value)


def _track_and_read(url: str) -> None:
    with Run(repo=url, system_tracking_interval=None, capture_terminal_logs=False) as run:
        run['hparams'] = {'ok': True}
        run.track(1.0, name='m')
    again = Repo(url).get_run(run.hash)
    assert again['hparams'] == {'ok': True}
    assert again.get_metric('m').values.values_list() == [1.0]


def test_the_token_from_the_environment(token_server, monkeypatch):
    monkeypatch.setenv('AIM_REMOTE_TOKEN', TOKEN)
    _track_and_read(token_server.url)


def test_a_token_set_after_a_refusal_is_used_by_the_same_repo(token_server, monkeypatch):
    import weakref

    import aim.sdk.repo
    monkeypatch.setattr(aim.sdk.repo, '_pool', weakref.WeakValueDictionary())  # no token yet
    repo = Repo.from_path(token_server.url)      # pooled: the next Run() gets this one
    with pytest.raises(RemoteAuthError):
        Run(repo=token_server.url, system_tracking_interval=None, capture_terminal_logs=False)
    monkeypatch.setenv('AIM_REMOTE_TOKEN', TOKEN)
    _track_and_read(token_server.url)
    assert Repo.from_path(token_server.url) is repo


def test_the_token_from_the_credentials_file(token_server, monkeypatch, tmp_path):
    credentials = tmp_path / 'credentials'
    credentials.write_text(f'[127.0.0.1:{token_server.port}]\ntoken = {TOKEN}\n')
    os.chmod(credentials, 0o600)
    monkeypatch.setenv('AIM_CREDENTIALS_FILE', str(credentials))
    _track_and_read(token_server.url)


def test_tls_with_the_ca_bundle(tmp_path_factory, self_signed_cert, monkeypatch):
    cert, key = self_signed_cert
    tls_server = _start_server(tmp_path_factory, tls=(cert, key))
    try:
        assert tls_server.url.startswith('aims://')
        monkeypatch.setenv('AIM_REMOTE_CA_BUNDLE', cert)
        _track_and_read(tls_server.url)
    finally:
        tls_server.stop()


def test_an_offline_run_spools_and_sends_nothing(url, remote, _spool):
    run = Run(repo=url, offline=True, system_tracking_interval=None,
              capture_terminal_logs=False)
    run['hparams'] = {'offline': True}
    for i in range(5):
        run.track(i, name='m')
    run.flush()
    streams = [d for d in os.listdir(_spool) if os.path.isdir(_spool / d)]
    assert len(streams) == 1
    assert os.path.exists(_spool / streams[0] / 'meta.json')
    assert remote.get_run(run.hash) is None
    run.close()
    time.sleep(0.5)          # a sender, were there one, ships every quarter second
    assert remote.get_run(run.hash) is None
    assert run.hash not in remote.list_all_runs()
    assert os.path.isdir(_spool / streams[0])   # kept for `aim sync`
