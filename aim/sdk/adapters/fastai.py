"""fastai callback: ``Learner(dls, model, cbs=[AimCallback(experiment='tabular')])``.

After every epoch the Recorder's values are tracked at ``step=epoch``: ``train_loss`` and
``valid_loss`` as ``loss`` with ``{'subset': 'train' | 'valid'}``, each metric
(``accuracy``, ...) with ``{'subset': 'valid'}``. The smoothed training loss of every
batch is tracked as ``loss`` with ``{'subset': 'train', 'batch': True}`` at the batch's
global number. The learner's set-up (model class, loss, optimizer, batch size, epochs,
learning rate) is saved as ``hparams``. The run closes when fitting ends (a later
``fit`` reopens it).
"""
from __future__ import annotations

from fastai.callback.core import Callback

from aim.sdk.adapters.adapter_run import AdapterRun, as_number

__all__ = ['AimCallback']

_SKIPPED = ('epoch', 'time')


class AimCallback(Callback):
    """Tracks a fastai Learner's losses and metrics into an aim Run. ``experiment`` is the
    aim Run (fastai's callbacks use ``run`` themselves, a flag)."""

    order = 70   # after the Recorder (50) has summed up the epoch

    def __init__(self, repo=None, experiment: str | None = None, run_hash: str | None = None,
                 system_tracking_interval: float | None = 10, log_system_params: bool = True,
                 capture_terminal_logs: bool = True, run=None, log_batches: bool = True):
        super().__init__()
        self._aim = AdapterRun(repo=repo, experiment=experiment, run_hash=run_hash,
                               system_tracking_interval=system_tracking_interval,
                               log_system_params=log_system_params,
                               capture_terminal_logs=capture_terminal_logs, run=run)
        self.log_batches = log_batches

    @property
    def experiment(self):
        return self._aim.run

    @property
    def run_hash(self) -> str | None:
        return self._aim.run_hash

    def before_fit(self) -> None:
        learn = self.learn
        hparams = {
            'model': type(learn.model).__name__,
            'loss_func': getattr(learn.loss_func, '__name__', type(learn.loss_func).__name__),
            'opt_func': getattr(learn.opt_func, '__name__', str(learn.opt_func)),
            'n_epoch': getattr(learn, 'n_epoch', None),
            'batch_size': getattr(learn.dls, 'bs', None),
        }
        opt = getattr(learn, 'opt', None)   # fit(lr=...) has set its hypers by now
        hypers = getattr(opt, 'hypers', None) or [{}]
        lr = as_number(hypers[-1].get('lr', getattr(learn, 'lr', None)))
        if lr is not None:
            hparams['lr'] = lr
        self._aim.set_params('hparams', hparams)

    def after_batch(self) -> None:
        if not self.log_batches or not self.learn.training:
            return
        loss = as_number(getattr(self.learn, 'smooth_loss', None))
        if loss is not None:
            self._aim.track(loss, name='loss', step=int(self.learn.train_iter),
                            epoch=int(self.learn.epoch),
                            context={'subset': 'train', 'batch': True})

    def after_epoch(self) -> None:
        recorder = self.learn.recorder
        epoch = int(self.learn.epoch)
        for name, raw in zip(recorder.metric_names, recorder.log):
            if name in _SKIPPED:
                continue
            value = as_number(raw)
            if value is None:
                continue
            if name in ('train_loss', 'valid_loss'):
                metric, subset = 'loss', name.split('_')[0]
            else:
                metric, subset = name, 'valid'
            self._aim.track(value, name=metric, step=epoch, epoch=epoch,
                            context={'subset': subset})

    def after_fit(self) -> None:
        self._aim.close()
