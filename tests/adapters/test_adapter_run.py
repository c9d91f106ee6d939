"""The parts every adapter shares: run lifecycle, rank check, names and values."""
import math

import pytest

from aim import Repo
from aim.sdk.adapters.adapter_run import (
    AdapterRun,
    ContextFromAffixes,
    as_number,
    epoch_index,
    is_global_rank_zero,
    namespace_to_dict,
    to_param_value,
)


@pytest.mark.parametrize('env, zero', [
    ({}, True),
    ({'RANK': '0'}, True),
    ({'RANK': '3'}, False),
    ({'RANK': '0', 'LOCAL_RANK': '1'}, True),  # the global rank decides
    ({'LOCAL_RANK': '1'}, False),
    ({'LOCAL_RANK': '0', 'NODE_RANK': '2'}, False),
    ({'LOCAL_RANK': '0', 'NODE_RANK': '0'}, True),
    ({'SLURM_PROCID': '5'}, False),
    ({'OMPI_COMM_WORLD_RANK': '0'}, True),
    ({'RANK': 'garbage'}, True),
])
def test_global_rank_zero_from_launcher_variables(monkeypatch, env, zero):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_global_rank_zero() is zero


def test_adapter_run_is_lazy_closes_and_reopens_the_same_run(repo_dir, quiet, metrics_of):
    aim_run = AdapterRun(repo=repo_dir, experiment='exp', **quiet)
    assert not aim_run.is_open and aim_run.run_hash is None
    aim_run.track(1.0, name='loss', step=0, context={'subset': 'train'})
    aim_run.set_params('hparams', {'lr': 0.1})
    aim_run.set_params('hparams', {'depth': 3})  # merged
    first_hash = aim_run.run_hash
    aim_run.close()
    assert not aim_run.is_open
    aim_run.track(2.0, name='loss', step=1, context={'subset': 'train'})
    assert aim_run.run_hash == first_hash
    aim_run.close()
    repo = Repo.from_path(repo_dir)
    assert repo.list_all_runs() == [first_hash]
    run = repo.get_run(first_hash)
    assert run['hparams'] == {'lr': 0.1, 'depth': 3} and run.experiment == 'exp'
    assert metrics_of(repo_dir, first_hash)('loss', subset='train').values.values_list() == [
        1.0, 2.0]


def test_adapter_run_continues_a_given_run(repo_dir, quiet, metrics_of):
    first = AdapterRun(repo=repo_dir, **quiet)
    first.track(1.0, name='x')
    first.close()
    again = AdapterRun(repo=repo_dir, run_hash=first.run_hash, **quiet)
    again.track(2.0, name='x')
    again.close()
    assert Repo.from_path(repo_dir).list_all_runs() == [first.run_hash]
    assert metrics_of(repo_dir, first.run_hash)('x').values.values_list() == [1.0, 2.0]


def test_non_zero_rank_creates_and_writes_nothing(repo_dir, quiet, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    aim_run = AdapterRun(repo=repo_dir, **quiet)
    aim_run.track(1.0, name='loss')
    aim_run.set_params('hparams', {'lr': 1})
    assert aim_run.run is None
    aim_run.close()
    assert Repo.from_path(repo_dir).list_all_runs() == []
    everyone = AdapterRun(repo=repo_dir, all_ranks=True, **quiet)
    everyone.track(1.0, name='loss')
    everyone.close()
    assert len(Repo.from_path(repo_dir).list_all_runs()) == 1


def test_a_callers_run_is_not_closed(make_run):
    run = make_run()
    aim_run = AdapterRun(run=run)
    aim_run.track(1.0, name='x')
    aim_run.close()
    assert run.active


@pytest.mark.parametrize('name, expected', [
    ('train_loss', ('loss', {'subset': 'train'})),
    ('val_acc', ('acc', {'subset': 'val'})),
    ('validation_acc', ('acc', {'subset': 'validation'})),  # the longest prefix wins
    ('loss', ('loss', {})),
    ('train_', ('train_', {})),  # a bare prefix is a name, not a context
    ('train_loss_epoch', ('loss', {'subset': 'train', 'aggregation': 'epoch'})),
])
def test_context_from_affixes(name, expected):
    names = ContextFromAffixes(
        {'train_': {'subset': 'train'}, 'val_': {'subset': 'val'},
         'validation_': {'subset': 'validation'}},
        {'_epoch': {'aggregation': 'epoch'}})
    assert names.split(name) == expected


def test_default_context_applies_when_no_affix_matches():
    names = ContextFromAffixes.subsets({'val_': 'val', '': 'ignored', 'x_': None},
                                       default_context={'subset': 'train'})
    assert names.split('loss') == ('loss', {'subset': 'train'})
    assert names.split('val_loss') == ('loss', {'subset': 'val'})


def test_as_number_accepts_scalars_of_any_library():
    np = pytest.importorskip('numpy')
    assert as_number(3) == 3 and isinstance(as_number(3), int)
    assert as_number(True) == 1
    assert as_number(np.float32(0.5)) == 0.5
    assert as_number(np.array([2.5])) == 2.5
    assert math.isnan(as_number(float('nan')))
    assert as_number('0.5') is None
    assert as_number(np.arange(3)) is None
    assert as_number(None) is None
    torch = pytest.importorskip('torch')
    assert as_number(torch.tensor(1.5)) == 1.5
    assert as_number(torch.tensor([1, 2])) is None


def test_epoch_index_numbers_epochs_from_zero():
    assert epoch_index(0.0) == 0
    assert epoch_index(0.5) == 0
    assert epoch_index(1.0) == 0  # the end of the first epoch
    assert epoch_index(1.25) == 1
    assert epoch_index(2) == 2  # an integer is already an index
    assert epoch_index(None) is None and epoch_index(float('nan')) is None


def test_to_param_value_makes_configs_json_like():
    class Opaque:
        def __str__(self):
            return 'opaque'

    value = to_param_value({1: (1, 2), 'nested': {'s': {3}, 'o': Opaque()}, 'n': None})
    assert value == {'1': [1, 2], 'nested': {'s': [3], 'o': 'opaque'}, 'n': None}


def test_namespace_to_dict():
    import argparse

    assert namespace_to_dict(argparse.Namespace(lr=0.1)) == {'lr': 0.1}
    assert namespace_to_dict({'a': 1}) == {'a': 1}
    assert namespace_to_dict(None) == {}
    with pytest.raises(TypeError, match='convert them to a dict'):
        namespace_to_dict(42)
