"""Real two-process DDP training (CPU, gloo): only global rank 0 creates and writes a run."""
import subprocess
import sys
import textwrap

import pytest

from aim import Repo

pytest.importorskip('lightning')
torch = pytest.importorskip('torch')

pytestmark = [pytest.mark.adapters, pytest.mark.slow]

SCRIPT = textwrap.dedent('''
    import sys
    import torch
    import lightning.pytorch as pl
    from aim.pytorch_lightning import AimLogger


    class Regressor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.save_hyperparameters({'lr': 0.05})
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log('train_loss', loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


    if __name__ == '__main__':
        x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
        data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
        logger = AimLogger(repo=sys.argv[1], system_tracking_interval=None,
                           log_system_params=False, capture_terminal_logs=False)
        trainer = pl.Trainer(max_epochs=1, accelerator='cpu', devices=2, strategy='ddp',
                             logger=logger, log_every_n_steps=1, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False,
                             default_root_dir=sys.argv[2])
        trainer.fit(Regressor(), torch.utils.data.DataLoader(data, batch_size=4))
''')


def test_ddp_on_two_processes_writes_one_run(repo_dir, metrics_of, only_run, tmp_path):
    script = tmp_path / 'train_ddp.py'  # Lightning's DDP launcher re-runs this file per rank
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), repo_dir, str(tmp_path / 'out')],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_hash = only_run()
    assert Repo.from_path(repo_dir).get_run(run_hash)['hparams'] == {'lr': 0.05}
    # 32 samples over 2 ranks in batches of 4: 4 steps, each logged once (by rank 0).
    assert metrics_of(repo_dir, run_hash)('loss', subset='train').steps.tolist() == [0, 1, 2, 3]
