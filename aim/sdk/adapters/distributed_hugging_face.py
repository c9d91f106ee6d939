"""Hugging Face Trainer callback for distributed training, under Aim 3.29's module name
``aim.distributed_hugging_face``.

It is :class:`aim.hugging_face.AimCallback`: only the world's main process (global rank
0, told by the Trainer) creates and writes the run, the other ranks do nothing, so a
``torchrun``/``accelerate launch`` job makes one run. Unlike Aim's, the system metrics of
the other ranks and nodes are not gathered into that run: each would need a channel
from every node to the main one, which aimkit does not have yet (track them with an
aim server, one run per node, if they matter).
"""
from __future__ import annotations

from aim.sdk.adapters.hugging_face import AimCallback

__all__ = ['AimCallback']
