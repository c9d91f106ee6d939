"""Images, texts and other aim objects through the Lightning, Keras and Hugging Face
adapters, trained with the real frameworks (tiny models, CPU)."""
import numpy as np
import pytest

from aim import Image, Repo, Text

pytestmark = pytest.mark.adapters


def _picture(value):
    return np.full((4, 6, 3), value, dtype=np.uint8)


def _run(repo_dir, run_hash):
    return Repo.from_path(repo_dir).get_run(run_hash)


def test_lightning_experiment_and_log_metrics_take_objects(repo_dir, quiet, only_run):
    torch = pytest.importorskip('torch')
    pl = pytest.importorskip('lightning.pytorch')
    from aim.pytorch_lightning import AimLogger

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log('train_loss', loss)
            return loss

        def on_train_epoch_end(self):
            epoch = self.current_epoch
            # Aim's idiom: the logger's experiment is the Run
            self.logger.experiment.track(Image(_picture(epoch), caption=f'epoch {epoch}'),
                                         name='samples', step=epoch)
            # and log_metrics tracks objects as they are, prefix -> context
            self.logger.log_metrics({'val_generated': Text(f'text {epoch}'),
                                     'batch': [Image(_picture(1)), Image(_picture(2))],
                                     'epoch': epoch}, step=epoch)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=generator)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)),
                                       batch_size=4)
    trainer = pl.Trainer(max_epochs=2, logger=AimLogger(repo=repo_dir, **quiet),
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator='cpu', log_every_n_steps=1)
    trainer.fit(Module(), data)

    run = _run(repo_dir, only_run())
    samples = run.get_image_sequence('samples')
    assert samples.steps == [0, 1]
    assert [i.caption for i in samples.values.values_list()] == ['epoch 0', 'epoch 1']
    np.testing.assert_array_equal(np.asarray(samples.values.last_value().to_pil_image()),
                                  _picture(1))
    generated = run.get_text_sequence('generated', {'subset': 'val'})
    assert [t.data for t in generated.values.values_list()] == ['text 0', 'text 1']
    assert generated.epochs == [0, 1]
    batch = run.get_image_sequence('batch').values.last_value()
    assert [np.asarray(i.to_pil_image())[0, 0, 0] for i in batch] == [1, 2]
    assert run.get_metric('loss', {'subset': 'train'}).count == 4


def test_keras_callback_experiment_tracks_objects(repo_dir, quiet, only_run):
    keras = pytest.importorskip('keras')
    from aim.keras import AimCallback

    aim_callback = AimCallback(repo=repo_dir, **quiet)

    def track_samples(epoch, logs):
        aim_callback.experiment.track(Image(_picture(10 + epoch)), name='samples', step=epoch,
                                      context={'subset': 'val'})
        aim_callback.experiment.track(Text(f'epoch {epoch}'), name='notes', step=epoch)

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer='sgd', loss='mse')
    x = np.random.default_rng(0).normal(size=(8, 2)).astype('float32')
    # the aim callback comes last: it closes the run when training ends
    model.fit(x, x[:, :1], epochs=2, batch_size=4, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=track_samples),
                         aim_callback])

    run = _run(repo_dir, only_run())
    samples = run.get_image_sequence('samples', {'subset': 'val'})
    assert samples.steps == [0, 1]
    np.testing.assert_array_equal(np.asarray(samples.values.last_value().to_pil_image()),
                                  _picture(11))
    assert [t.data for t in run.get_text_sequence('notes').values.values_list()] == [
        'epoch 0', 'epoch 1']
    assert run.get_metric('loss', {'subset': 'train'}).count == 2


def test_hugging_face_callback_experiment_tracks_objects(repo_dir, quiet, only_run, tmp_path):
    torch = pytest.importorskip('torch')
    transformers = pytest.importorskip('transformers')
    pytest.importorskip('accelerate')
    from aim.hugging_face import AimCallback

    aim_callback = AimCallback(repo=repo_dir, **quiet)

    class Generations(transformers.TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            aim_callback.experiment.track(Text(f'generated at {state.global_step}'),
                                          name='generations', step=state.global_step)

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            ids = torch.tensor([1 + i % 5, 2, 3, 4])
            return {'input_ids': ids, 'attention_mask': torch.ones_like(ids),
                    'labels': torch.tensor(i % 2)}

    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=8, max_position_embeddings=8, num_labels=2))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / 'out'), num_train_epochs=2, per_device_train_batch_size=4,
        logging_steps=1, save_strategy='no', report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(),
                                   callbacks=[Generations, aim_callback])
    trainer.train()

    run = _run(repo_dir, only_run())
    generations = run.get_text_sequence('generations')
    assert generations.steps == [2, 4]
    assert [t.data for t in generations.values.values_list()] == [
        'generated at 2', 'generated at 4']
    assert run.get_metric('loss').count == 4
