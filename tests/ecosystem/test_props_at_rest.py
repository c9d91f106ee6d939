"""Aim's compatibility gaps: ``from aim import Metric`` and editing the props of a run
read from the repository (``repo.get_run(h).archived = True``, as Aim allows)."""
import pytest

from aim import Repo, Run
from aim.errors import ReadOnlyRunError, RunLockedError

pytestmark = pytest.mark.backends


def _closed_run(repo, **kw):
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False, **kw)
    run['hparams'] = {'lr': 0.1}
    run.track(1.0, name='loss', step=3)
    run.close()
    return run


def test_metric_is_importable_from_aim():
    from aim import Metric
    from aim.sdk import Metric as SdkMetric
    assert Metric is SdkMetric


def test_props_of_a_run_from_iter_runs_and_get_run_can_be_edited(repo):
    run = _closed_run(repo, experiment='first')
    end_time = run.end_time
    for stored in repo.iter_runs():
        stored.archived = True
        stored.name = 'renamed'
        stored.description = 'edited at rest'
        stored.experiment = 'second'
        stored.add_tag('good')
        stored.add_tag('keep')
        assert stored.remove_tag('good')
        assert stored.archived and stored.name == 'renamed'
    fresh = Repo(repo.root_path).get_run(run.hash)
    assert fresh.archived is True and fresh.name == 'renamed'
    assert fresh.description == 'edited at rest' and fresh.experiment == 'second'
    assert fresh.tags == ['keep']
    assert fresh.end_time == end_time          # the run is not re-opened
    assert fresh['hparams'] == {'lr': 0.1}
    assert fresh.get_metric('loss').values.last() == (3, 1.0)
    # queries see the change (archived runs are hidden unless the query names archived)
    assert [i.run.hash for i in repo.query_runs('run.archived == True')] == [run.hash]
    assert list(repo.query_runs('run.experiment == "second"')) == []
    got = repo.get_run(run.hash)
    got.archived = False
    assert [i.run.hash for i in repo.query_runs('run.experiment == "second"')] == [run.hash]
    # a resumed run keeps the edited props
    resumed = Run(run.hash, repo=repo, system_tracking_interval=None,
                  capture_terminal_logs=False)
    assert resumed.name == 'renamed' and resumed.tags == ['keep']
    resumed.close()


def test_params_and_series_of_a_stored_run_stay_read_only(repo):
    run = _closed_run(repo)
    stored = repo.get_run(run.hash)
    with pytest.raises(ReadOnlyRunError):
        stored['x'] = 1
    with pytest.raises(ReadOnlyRunError):
        stored.track(1.0, name='loss')


def test_a_run_written_elsewhere_refuses_edits_at_rest(repo):
    live = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    try:
        with pytest.raises(RunLockedError) as caught:
            repo.get_run(live.hash).archived = True
        assert 'through that Run' in str(caught.value)
        live.archived = True          # the writer itself can
    finally:
        live.close()
    assert repo.get_run(live.hash).archived is True
