"""The Trainer callback on a tiny BERT built from a config (nothing is downloaded)."""
import pytest

from aim import Repo

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')
pytest.importorskip('accelerate')

from aim.hugging_face import AimCallback  # noqa: E402

pytestmark = pytest.mark.adapters


class TinyDataset(torch.utils.data.Dataset):
    def __init__(self, n=16, length=6, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(1, 30, (n, length), generator=generator)
        self.labels = (self.input_ids[:, 0] % 2).long()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {'input_ids': self.input_ids[i],
                'attention_mask': torch.ones_like(self.input_ids[i]),
                'labels': self.labels[i]}


def tiny_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=16,
                                     max_position_embeddings=16, num_labels=2)
    return transformers.BertForSequenceClassification(config)


def training_arguments(tmp_path, **overrides):
    options = dict(output_dir=str(tmp_path / 'out'), num_train_epochs=2,
                   per_device_train_batch_size=4, per_device_eval_batch_size=8,
                   learning_rate=1e-3, logging_steps=1, eval_strategy='epoch',
                   save_strategy='no', report_to=[], use_cpu=True, disable_tqdm=True,
                   seed=0, dataloader_num_workers=0)
    options.update(overrides)
    return transformers.TrainingArguments(**options)


def test_arguments_config_and_logs(repo_dir, quiet, metrics_of, only_run, tmp_path):
    callback = AimCallback(repo=repo_dir, experiment='hf', **quiet)
    trainer = transformers.Trainer(model=tiny_bert(), args=training_arguments(tmp_path),
                                   train_dataset=TinyDataset(), eval_dataset=TinyDataset(8, seed=1),
                                   callbacks=[callback])
    trainer.train()

    run_hash = only_run()
    assert callback.run_hash == run_hash
    metrics = metrics_of(repo_dir, run_hash)
    loss = metrics('loss')  # the per-step training loss
    assert loss.steps.tolist() == list(range(1, 9))
    assert loss.epochs.tolist() == [0] * 4 + [1] * 4
    assert metrics('learning_rate').count == 8
    eval_loss = metrics('loss', subset='eval')
    assert eval_loss.steps.tolist() == [4, 8] and eval_loss.epochs.tolist() == [0, 1]
    assert metrics('runtime', subset='eval').count == 2
    assert metrics('loss', subset='train').count == 1  # the average Trainer logs at the end

    run = Repo.from_path(repo_dir).get_run(run_hash)
    assert run.experiment == 'hf' and not run.active
    assert run['hparams']['learning_rate'] == 1e-3
    assert run['hparams']['num_train_epochs'] == 2
    assert run['model']['hidden_size'] == 8 and run['model']['model_type'] == 'bert'

    trainer.evaluate()  # after training: the same run is reopened for the new point
    callback.close()
    assert metrics_of(repo_dir, run_hash)('loss', subset='eval').count == 2  # step 8 again


@pytest.mark.parametrize('restore_callback_states', [False, True])
def test_resuming_from_a_checkpoint_continues_the_run(repo_dir, quiet, metrics_of, only_run,
                                                      tmp_path, restore_callback_states):
    # With restore_callback_states_from_checkpoint the Trainer rebuilds the callback from
    # its saved state(); without, the callback reads the hash from the loaded state.
    args = training_arguments(tmp_path, eval_strategy='no', save_strategy='steps',
                              save_steps=4,
                              restore_callback_states_from_checkpoint=restore_callback_states)
    first = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=TinyDataset(),
                                 callbacks=[AimCallback(repo=repo_dir, **quiet)])
    first.train()
    run_hash = only_run()

    # A new process would build everything again: a fresh callback with no run_hash.
    resumed = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=TinyDataset(),
                                   callbacks=[AimCallback(repo=repo_dir, **quiet)])
    resumed.train(resume_from_checkpoint=str(tmp_path / 'out' / 'checkpoint-4'))
    assert only_run() == run_hash
    assert metrics_of(repo_dir, run_hash)('loss').steps.tolist() == list(range(1, 9))


def test_only_the_main_process_writes(repo_dir, quiet, tmp_path):
    callback = AimCallback(repo=repo_dir, **quiet)
    state = transformers.TrainerState(is_world_process_zero=False, global_step=3, epoch=0.5)
    args = training_arguments(tmp_path)
    control = transformers.TrainerControl()
    callback.on_train_begin(args, state, control, model=tiny_bert())
    callback.on_log(args, state, control, logs={'loss': 1.0})
    callback.on_train_end(args, state, control)
    assert Repo.from_path(repo_dir).list_all_runs() == []


def test_non_numbers_are_skipped_with_one_warning(repo_dir, quiet, metrics_of, only_run,
                                                  tmp_path):
    callback = AimCallback(repo=repo_dir, **quiet)
    state = transformers.TrainerState(global_step=2, epoch=1.5)
    args = training_arguments(tmp_path)
    with pytest.warns(RuntimeWarning, match="'note'"):
        callback.on_log(args, state, None, logs={'loss': 0.5, 'note': 'text', 'epoch': 1.5})
    callback.on_log(args, state, None, logs={'note': 'again'})
    callback.close()
    loss = metrics_of(repo_dir, only_run())('loss')
    assert loss.steps.tolist() == [2] and loss.epochs.tolist() == [1]


def test_several_evaluation_datasets_become_a_sub_dataset_context(repo_dir, quiet,
                                                                 metrics_of, only_run,
                                                                 tmp_path):
    """eval_dataset={'clean': ..., 'noisy_v2': ...}: the Trainer logs eval_clean_loss,
    eval_noisy_v2_samples_per_second, ...; each is the plain metric name with the dataset in
    the context, as Aim's callback does."""
    callback = AimCallback(repo=repo_dir, **quiet)
    trainer = transformers.Trainer(
        model=tiny_bert(), args=training_arguments(tmp_path, num_train_epochs=1),
        train_dataset=TinyDataset(),
        eval_dataset={'clean': TinyDataset(8, seed=1), 'noisy_v2': TinyDataset(8, seed=2)},
        callbacks=[callback])
    trainer.train()
    metrics = metrics_of(repo_dir, only_run())
    for dataset in ('clean', 'noisy_v2'):
        assert metrics('loss', subset='eval', sub_dataset=dataset).steps.tolist() == [4]
        assert metrics('samples_per_second', subset='eval', sub_dataset=dataset).count == 1
    assert not [key for key in metrics_of(repo_dir, only_run()).keys()
                if key[0].startswith(('clean', 'noisy'))]
