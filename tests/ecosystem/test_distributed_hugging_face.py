"""aim.distributed_hugging_face: a Trainer under torchrun with two CPU processes (gloo)
makes one run, written by global rank 0."""
import socket
import subprocess
import sys
import textwrap

import pytest

from aim import Repo

pytest.importorskip('torch')
pytest.importorskip('transformers')
pytest.importorskip('accelerate')

SCRIPT = textwrap.dedent('''
    import os, sys
    import torch, transformers
    from aim.distributed_hugging_face import AimCallback

    class Tiny(torch.utils.data.Dataset):
        def __init__(self, n=16):
            g = torch.Generator().manual_seed(0)
            self.ids = torch.randint(1, 30, (n, 6), generator=g)
        def __len__(self):
            return len(self.ids)
        def __getitem__(self, i):
            return {'input_ids': self.ids[i], 'attention_mask': torch.ones_like(self.ids[i]),
                    'labels': (self.ids[i, 0] % 2).long()}

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=16,
                                     max_position_embeddings=16, num_labels=2)
    args = transformers.TrainingArguments(
        output_dir=sys.argv[2], num_train_epochs=1, per_device_train_batch_size=4,
        logging_steps=1, save_strategy='no', report_to=[], use_cpu=True, disable_tqdm=True,
        ddp_backend='gloo', dataloader_num_workers=0, seed=0)
    callback = AimCallback(repo=sys.argv[1], experiment='ddp', system_tracking_interval=None,
                           log_system_params=False, capture_terminal_logs=False)
    trainer = transformers.Trainer(model=transformers.BertForSequenceClassification(config),
                                   args=args, train_dataset=Tiny(), callbacks=[callback])
    trainer.train()
    with open(os.path.join(sys.argv[2], 'rank' + os.environ['RANK']), 'w') as f:
        f.write(f'RANK {os.environ["RANK"]} WORLD {trainer.args.world_size} HASH '
                f'{callback.run_hash}')
    # PyTorch asks a job to tear its process group down itself; left to interpreter exit,
    # gloo's threads can abort the process ("terminate called without an active exception")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
''')


@pytest.mark.slow
def test_two_processes_make_one_run(new_repo, tmp_path, child_env):
    script = tmp_path / 'train.py'
    script.write_text(SCRIPT)
    env = dict(child_env, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    with socket.socket() as probe:          # a free port for the rendezvous
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    res = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
                          '2', '--master_addr', '127.0.0.1', '--master_port', str(port),
                          str(script), new_repo.root_path,
                          str(tmp_path / 'out')], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = sorted((tmp_path / 'out' / f'rank{r}').read_text().split() for r in (0, 1))
    assert [line[1] for line in lines] == ['0', '1'] and lines[0][3] == '2'
    assert lines[1][5] == 'None'                    # rank 1 never opened a run
    runs = list(Repo(new_repo.root_path).iter_runs())
    assert [r.hash for r in runs] == [lines[0][5]]
    run = runs[0]
    assert run.experiment == 'ddp' and not run.active
    # 16 samples, 2 processes x batch 4: two optimizer steps, each logged once
    assert run.get_metric('loss').values.sparse_numpy()[0].tolist() == [1, 2]
