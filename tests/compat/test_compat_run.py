"""Run as an Aim 3 user writes it: constructor forms, the params dict protocol, props."""
import datetime
import math

import pytest

from aim import Repo, Run
from aim.errors import MissingRunError, ReadOnlyRunError

pytestmark = pytest.mark.backends

QUIET = {'system_tracking_interval': None, 'capture_terminal_logs': False}


# constructor forms ------------------------------------------------------------------------
def test_seed_form_default_repository(tmp_path, monkeypatch):
    # the seed quick start: `aim init`, then Run() with no arguments
    Repo(str(tmp_path), init=True)
    (tmp_path / 'src').mkdir()
    monkeypatch.chdir(tmp_path / 'src')
    run = Run(**QUIET)
    run['params'] = {'foo': 'bar'}
    run.close()
    assert run.repo.root_path == str(tmp_path)
    assert Repo.default_repo().get_run(run.hash)['params'] == {'foo': 'bar'}


def test_run_without_aim_init_creates_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Run(**QUIET) as run:
        run.track(1.0, name='loss')
    assert Repo.exists(str(tmp_path))


@pytest.mark.parametrize('repo_form', ['str', 'pathlib', 'Repo', 'dot_aim'])
def test_repo_argument_forms(repo_dir, repo_form):
    import pathlib
    repo_arg = {'str': repo_dir, 'pathlib': pathlib.Path(repo_dir),
                'Repo': Repo.from_path(repo_dir), 'dot_aim': repo_dir + '/.aim'}[repo_form]
    with Run(repo=repo_arg, **QUIET) as run:
        run['x'] = 1
    assert Repo(repo_dir).get_run(run.hash)['x'] == 1


def test_resume_by_hash_positional_keyword_and_hashname(make_run, repo):
    first = make_run(experiment='exp')
    first.track(1.0, name='loss')
    first.close()
    for kwargs in ({'run_hash': first.hash}, {'hashname': first.hash}):
        run = make_run(**kwargs)
        run.track(2.0, name='loss')
        run.close()
    with Run(first.hash, repo=repo, **QUIET) as positional:
        assert positional.hash == first.hash
    m = repo.get_run(first.hash).get_metric('loss')
    assert m.values.values_list() == [1.0, 2.0, 2.0] and m.steps.tolist() == [0, 1, 2]
    assert repo.get_run(first.hash).experiment == 'exp'
    assert positional.hashname == first.hash


def test_read_only_run(make_run, repo):
    run = make_run()
    run['hparams'] = {'lr': 0.1}
    run.close()
    ro = Run(run.hash, repo=repo, read_only=True)
    assert ro['hparams', 'lr'] == 0.1 and ro.read_only
    with pytest.raises(ReadOnlyRunError):
        ro['x'] = 1
    with pytest.raises(ReadOnlyRunError):
        ro.track(1.0, name='loss')


def test_read_only_needs_an_existing_hash(repo):
    with pytest.raises(ValueError):
        Run(repo=repo, read_only=True)
    with pytest.raises(MissingRunError) as err:
        Run('0123456789abcdef01234567', repo=repo, read_only=True)
    assert isinstance(err.value, KeyError)


def test_custom_run_hash_is_created(make_run, repo):
    # v3.0.0 accepted any hash and created the run (HEAD refuses unknown hashes): kept
    run = make_run(run_hash='baseline-seed-1')
    run.track(0.5, name='loss')
    run.close()
    assert repo.get_run('baseline-seed-1').get_metric('loss').values_list() == [0.5]


def test_run_experiment_argument(make_run, repo):
    run = make_run(experiment='exp1')
    run.close()
    assert repo.get_run(run.hash).experiment == 'exp1'


def test_context_manager_closes(repo):
    with Run(repo=repo, **QUIET) as run:
        assert run.active and run.end_time is None
    ro = repo.get_run(run.hash)
    assert not ro.active and ro.end_time is not None


def test_finalize_is_kept_for_scripts_of_older_releases(repo):
    run = Run(repo=repo, **QUIET)
    run.finalize()
    assert repo.get_run(run.hash).end_time is not None


# params dict protocol (§1.4) ------------------------------------------------------------
def test_params_set_get_tuple_paths(make_run, repo):
    run = make_run()
    run['hparams'] = {'lr': 0.01, 'batch_size': 32}
    run['hparams', 'optimizer'] = 'adam'
    run['new', 'x'] = 1                              # missing parents are created
    assert run['hparams'] == {'lr': 0.01, 'batch_size': 32, 'optimizer': 'adam'}
    assert run['hparams', 'lr'] == 0.01 and run['hparams']['batch_size'] == 32
    assert run['new'] == {'x': 1}
    assert run.get(('hparams', 'batch_size')) == 32
    assert run.get('hparams', {})['lr'] == 0.01
    assert run.get('missing') is None and run.get('missing', 5) == 5
    assert run.get(('hparams', 'missing'), '') == ''
    run.close()
    ro = repo.get_run(run.hash)
    assert ro['hparams', 'optimizer'] == 'adam' and ro[...]['new'] == {'x': 1}


def test_params_ellipsis_replaces_all(make_run):
    run = make_run()
    run['a'] = 1
    run[...] = {'b': 2}
    assert run[...] == {'b': 2}


def test_params_value_round_trips(make_run, repo):
    run = make_run()
    run['tuple'] = (1, 2)
    run['x.y'] = 3                 # dotted keys are one key
    run[''] = 'empty key'
    run['nan'] = float('nan')
    run['none'] = None
    run['nested'] = {'a': [1, {'b': True}], 's': 'str', 'f': 1.5}
    run.close()
    ro = repo.get_run(run.hash)
    assert ro['tuple'] == [1, 2]   # tuples come back as lists, as in Aim
    assert ro['x.y'] == 3 and ro[''] == 'empty key'
    assert math.isnan(ro['nan']) and ro['none'] is None
    assert ro['nested'] == {'a': [1, {'b': True}], 's': 'str', 'f': 1.5}


def test_missing_param_raises_key_error(make_run):
    run = make_run()
    run['hparams'] = {'lr': 0.1}
    with pytest.raises(KeyError, match='missing'):
        run['missing']
    with pytest.raises(KeyError):
        run['hparams', 'missing']


def test_set_strict_and_non_strict(make_run):
    run = make_run()

    class Opaque:
        def __repr__(self):
            return '<Opaque>'

    with pytest.raises(TypeError):
        run['obj'] = Opaque()
    with pytest.raises(TypeError):
        run.set('obj', Opaque())
    run.set('obj', Opaque(), strict=False)
    assert run['obj'] == '<Opaque>'
    run.set('num', 3)
    assert run['num'] == 3


def test_delete_params(make_run, repo):
    run = make_run()
    run['hparams'] = {'lr': 0.1, 'bs': 32}
    run['other'] = 1
    del run['hparams', 'bs']
    del run['other']
    del run['never-set']           # a no-op, as in Aim
    del run['hparams', 'nope', 'deeper']
    run.close()
    assert repo.get_run(run.hash)[...] == {'hparams': {'lr': 0.1}}


# props (§1.3) ---------------------------------------------------------------------------
def test_props_round_trip(make_run, repo):
    run = make_run()
    run.name = 'my run'
    run.description = 'first try'
    run.experiment = 'exp2'
    run.add_tag('baseline')
    run.add_tag('tuned')
    run.add_tag('baseline')        # a duplicate is ignored
    run.remove_tag('tuned')
    run.archived = True
    run.close()
    ro = repo.get_run(run.hash)
    assert (ro.name, ro.description, ro.experiment) == ('my run', 'first try', 'exp2')
    assert ro.tags == ['baseline'] and ro.archived is True
    assert ro.props.name == 'my run' and ro.props.experiment == 'exp2'


def test_time_props(make_run, repo):
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    run = make_run()
    assert isinstance(run.creation_time, float)
    assert run.end_time is None and run.active is True and run.finalized_at is None
    assert run.duration >= 0
    created = run.created_at
    assert created.tzinfo is None and created >= before - datetime.timedelta(seconds=1)
    run.close()
    ro = repo.get_run(run.hash)
    assert ro.active is False and ro.end_time >= ro.creation_time
    assert ro.finalized_at.tzinfo is None and ro.finalized_at >= ro.created_at
    assert ro.duration == pytest.approx(ro.end_time - ro.creation_time)


def test_run_equality_and_hash(make_run, repo):
    run = make_run()
    run.close()
    assert repo.get_run(run.hash) == run
    assert len({run, repo.get_run(run.hash)}) == 1


def test_run_dataframe(make_run):
    pytest.importorskip('pandas')
    run = make_run(experiment='exp1')
    run['hparams'] = {'lr': 0.1, 'opt': {'name': 'adam'}}
    df = run.dataframe()
    assert len(df) == 1
    assert list(df.columns)[:9] == ['hash', 'name', 'description', 'archived',
                                    'creation_time', 'end_time', 'active', 'experiment',
                                    'tags']
    assert df['hparams.lr'][0] == 0.1 and df['hparams.opt.name'][0] == 'adam'
    assert df['experiment'][0] == 'exp1'


def test_second_writer_of_a_run_is_refused(make_run, repo):
    # Aim 3.29 lets a second Run(h) in the same process write alongside the first one
    from aim.errors import RunLockedError
    run = make_run()
    with pytest.raises(RunLockedError, match='read_only=True'):
        Run(run.hash, repo=repo, **QUIET)
    assert Run(run.hash, repo=repo, read_only=True).hash == run.hash
