"""``aim.fastai``: the fastai adapter (see :mod:`aim.sdk.adapters.fastai`)."""
from aim.sdk.adapters.fastai import AimCallback

__all__ = ['AimCallback']
