"""Aim 3 import paths and constants (reference §10): code importing them runs unchanged."""
import inspect
import re

import pytest


def test_top_level_names():
    import aim
    from aim import Repo, Run
    from aim.sdk.repo import Repo as SdkRepo
    from aim.sdk.run import Run as SdkRun
    assert Run is SdkRun and Repo is SdkRepo
    for legacy in ('Session', 'track', 'set_params', 'flush', 'init', 'select_runs',
                   'select_metrics'):
        assert callable(getattr(aim, legacy)), legacy


def test_metric_class_paths():
    from aim.sdk import Metric, Trace
    from aim.sdk.trace import Metric as TraceMetric
    assert Metric is TraceMetric and Trace is Metric


def test_query_report_mode():
    from aim.sdk.types import QueryReportMode
    assert [(m.name, m.value) for m in QueryReportMode] == [
        ('DISABLED', 0), ('PROGRESS_BAR', 1), ('PROGRESS_TUPLE', 2)]
    assert QueryReportMode(0) is QueryReportMode.DISABLED


def test_context_is_a_hashable_read_only_dict():
    from aim.storage.context import Context
    ctx = Context({'subset': 'train', 'fold': 1})
    assert ctx == {'fold': 1, 'subset': 'train'} and ctx['subset'] == 'train'
    assert hash(ctx) == hash(Context({'fold': 1, 'subset': 'train'}))
    assert ctx.to_dict() == {'subset': 'train', 'fold': 1}
    assert type(ctx.to_dict()) is dict
    assert Context({}) == {} and Context(None) == {} and Context() == Context({})
    assert len({Context({'a': 1}), Context({'a': 1}), Context({})}) == 2
    assert isinstance(ctx.idx, int) and ctx.idx == Context({'fold': 1, 'subset': 'train'}).idx
    assert Context({'a': 1}).idx != Context({'a': '1'}).idx
    with pytest.raises(TypeError, match='read-only'):
        ctx['subset'] = 'val'
    with pytest.raises(TypeError, match='read-only'):
        ctx.update(a=1)
    with pytest.raises(TypeError, match='built from a dict'):
        Context('train')


def test_context_pickles():
    import pickle

    from aim.storage.context import Context
    ctx = Context({'subset': 'train'})
    back = pickle.loads(pickle.dumps(ctx))
    assert type(back) is Context and back == ctx


def test_safe_mode_functions_exist():
    from aim.ext.exception_resistant import (
        disable_safe_mode,
        enable_safe_mode,
        set_exception_callback,
    )
    assert callable(enable_safe_mode) and callable(disable_safe_mode)
    assert callable(set_exception_callback)


@pytest.mark.parametrize('module', ['hugging_face', 'keras', 'pytorch_lightning', 'tensorflow',
                                    'xgboost', 'pytorch', 'lightgbm', 'optuna'])
def test_adapter_module_aliases_exist(module):
    # found, not imported: importing one imports its framework, as in Aim
    import importlib.util
    assert importlib.util.find_spec(f'aim.{module}') is not None


def test_run_constructor_signature():
    from aim import Run
    params = inspect.signature(Run.__init__).parameters
    assert list(params)[:2] == ['self', 'run_hash']
    expected = {'repo': None, 'read_only': False, 'experiment': None, 'force_resume': False,
                'system_tracking_interval': 10, 'log_system_params': False,
                'capture_terminal_logs': True}
    for name, default in expected.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default == default, name


def test_repo_constructor_signature():
    from aim import Repo
    params = inspect.signature(Repo.__init__).parameters
    assert list(params)[1:] == ['path', 'read_only', 'init']
    assert params['read_only'].default is None and params['init'].default is False


def test_track_signature():
    from aim import Run
    params = inspect.signature(Run.track).parameters
    assert list(params)[1:6] == ['value', 'name', 'step', 'epoch', 'context']
    assert params['name'].default is None and params['step'].default is None
    assert params['context'].kind is inspect.Parameter.KEYWORD_ONLY


def test_new_run_constants(make_run):
    run = make_run()
    assert re.fullmatch(r'[0-9a-f]{24}', run.hash)
    assert run.name == f'Run: {run.hash}'
    assert run.experiment == 'default'
    assert run.description is None and run.tags == [] and run.archived is False


def test_system_metric_names(repo):
    # the first sample is taken when tracking starts; 1 s is the shortest interval here
    import time

    from aim import Run
    with Run(repo=repo, system_tracking_interval=1, capture_terminal_logs=False) as run:
        deadline = time.monotonic() + 5
        while run.get_metric('__system__disk_percent') is None and time.monotonic() < deadline:
            time.sleep(0.05)   # the sample runs in a thread; closing would cut it short
    names = {m.name for m in repo.get_run(run.hash).metrics()}
    assert {'__system__cpu', '__system__memory_percent', '__system__p_memory_percent',
            '__system__disk_percent'} <= names
    for m in repo.get_run(run.hash).metrics():
        if m.name.startswith('__system__gpu'):
            assert set(m.context) == {'gpu'}
        elif m.name.startswith('__system__'):
            assert m.context == {}


def test_no_system_metrics_when_interval_is_none(repo):
    from aim import Run
    with Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False) as run:
        run.track(1.0, name='loss')
    assert [m.name for m in repo.get_run(run.hash).metrics()] == ['loss']


def test_ui_defaults():
    from click.testing import CliRunner

    from aim.cli.main import cli
    out = CliRunner().invoke(cli, ['up', '--help']).output
    assert '127.0.0.1' in out and '43800' in out
