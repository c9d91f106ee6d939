"""The Lightning logger with both the `lightning` and the `pytorch_lightning` packages."""
import importlib

import pytest

from aim import Repo

torch = pytest.importorskip('torch')
pytest.importorskip('lightning')
pytest.importorskip('pytorch_lightning')

from aim.pytorch_lightning import AimLogger, logger_class_for  # noqa: E402

pytestmark = pytest.mark.adapters

PACKAGES = ['lightning.pytorch', 'pytorch_lightning']


def tiny_module(pl):
    class Regressor(pl.LightningModule):
        def __init__(self, lr=0.05, hidden=4):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, 1))

        def _loss(self, batch):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def training_step(self, batch, batch_idx):
            loss = self._loss(batch)
            self.log('train_loss', loss)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log('val_loss', self._loss(batch))

        def test_step(self, batch, batch_idx):
            self.log('test_loss', self._loss(batch))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return Regressor()


def loader(n=16):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    dataset = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    return torch.utils.data.DataLoader(dataset, batch_size=4)


def trainer(pl, logger, tmp_path, epochs=2):
    return pl.Trainer(max_epochs=epochs, logger=logger, default_root_dir=str(tmp_path),
                      accelerator='cpu', devices=1, log_every_n_steps=1,
                      enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, num_sanity_val_steps=0)


@pytest.mark.parametrize('package', PACKAGES)
def test_hparams_and_metrics_with_subset_context(package, repo_dir, quiet, metrics_of,
                                                 only_run, tmp_path):
    pl = importlib.import_module(package)
    logger = logger_class_for(package)(repo=repo_dir, experiment='pl', **quiet)
    assert isinstance(logger, pl.loggers.Logger)
    fit_trainer = trainer(pl, logger, tmp_path)
    module = tiny_module(pl)
    fit_trainer.fit(module, loader(), loader())
    fit_trainer.test(module, dataloaders=loader(), verbose=False)

    run_hash = only_run()
    assert logger.version == run_hash
    metrics = metrics_of(repo_dir, run_hash)
    assert set(metrics) == {('loss', (('subset', subset),)) for subset in ('train', 'val', 'test')}
    train = metrics('loss', subset='train')
    assert train.steps.tolist() == list(range(8))
    assert train.epochs.tolist() == [0] * 4 + [1] * 4
    val = metrics('loss', subset='val')
    assert val.epochs.tolist() == [0, 1] and val.steps.tolist() == [3, 7]
    assert metrics('loss', subset='test').count == 1  # test() reopened the same run

    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run['hparams'] == {'lr': 0.05, 'hidden': 4}
    assert run.experiment == 'pl' and not run.active  # finalize() closed it


def test_default_class_serves_both_trainers(repo_dir, quiet, tmp_path):
    import pytorch_lightning

    logger = AimLogger(repo=repo_dir, **quiet)
    trainer(pytorch_lightning, logger, tmp_path, epochs=1).fit(
        tiny_module(pytorch_lightning), loader())
    assert len(Repo.from_path(repo_dir).list_all_runs()) == 1


def test_run_hash_continues_a_run(repo_dir, quiet, metrics_of, tmp_path):
    import lightning.pytorch as pl

    first = AimLogger(repo=repo_dir, **quiet)
    trainer(pl, first, tmp_path, epochs=1).fit(tiny_module(pl), loader())
    again = AimLogger(repo=repo_dir, run_hash=first.version, run_name='resumed', **quiet)
    trainer(pl, again, tmp_path, epochs=1).fit(tiny_module(pl), loader())
    repo = Repo.from_path(repo_dir)
    assert repo.list_all_runs() == [first.version]
    assert repo.get_run(first.version).name == 'resumed'
    # Each fit counts steps from 0 again; the second one's points replace the first's.
    assert metrics_of(repo_dir, first.version)('loss', subset='train').count == 4


def test_custom_prefixes_and_postfixes(repo_dir, quiet, metrics_of, only_run):
    logger = AimLogger(repo=repo_dir, context_prefixes={'tr/': {'subset': 'train'}},
                       context_postfixes={'_step': {'aggregation': 'step'}}, **quiet)
    logger.log_metrics({'tr/loss_step': 1.0, 'other': torch.tensor(2.0), 'epoch': 3}, step=5)
    logger.finalize('success')
    metrics = metrics_of(repo_dir, only_run())
    loss = metrics('loss', subset='train', aggregation='step')
    assert loss.steps.tolist() == [5] and loss.epochs.tolist() == [3]
    assert metrics('other').values.values_list() == [2.0]


def test_non_zero_rank_writes_nothing(repo_dir, quiet):
    from lightning.pytorch.utilities import rank_zero_only

    logger = AimLogger(repo=repo_dir, **quiet)
    previous, rank_zero_only.rank = rank_zero_only.rank, 1
    try:
        logger.log_hyperparams({'lr': 1})
        logger.log_metrics({'train_loss': 1.0}, step=0)
        assert logger.experiment is None
    finally:
        rank_zero_only.rank = previous
    logger.finalize('success')
    assert Repo.from_path(repo_dir).list_all_runs() == []


@pytest.mark.parametrize('shape', ['config', 'config_argument'])
def test_omegaconf_hyperparameters_become_plain_params(shape, repo_dir, quiet, only_run,
                                                       tmp_path):
    """Hydra users hand Lightning an OmegaConf config, as the module's hyperparameters or
    as one of its arguments; the run's params are plain nested values, interpolations
    resolved."""
    omegaconf = pytest.importorskip('omegaconf')
    import lightning.pytorch as pl

    cfg = omegaconf.OmegaConf.create({'lr': 0.05, 'model': {'hidden': 4, 'widths': [4, 2]},
                                      'width': '${model.hidden}'})

    class Configured(pl.LightningModule):
        def __init__(self, cfg):
            super().__init__()
            if shape == 'config':
                self.save_hyperparameters(cfg)
            else:
                self.save_hyperparameters()
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log('train_loss', loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    logger = AimLogger(repo=repo_dir, **quiet)
    trainer(pl, logger, tmp_path, epochs=1).fit(Configured(cfg), loader())
    params = Repo.from_path(repo_dir).get_run(only_run())['hparams']
    expected = {'lr': 0.05, 'model': {'hidden': 4, 'widths': [4, 2]}, 'width': 4}
    assert params == (expected if shape == 'config' else {'cfg': expected})
