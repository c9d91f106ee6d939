"""Per-layer weight and gradient tracking for PyTorch models.

``track_params_dists(model, run)`` and ``track_gradients_dists(model, run)`` track, for
every layer, the L2 norm of its weights (or of their gradients) as a metric named after
the layer, with context ``{'type': 'data' | 'gradients', 'params': 'weights' | 'biases',
'stat': 'norm'}``. Histograms of the values come when the Distribution object exists;
they will be tracked beside the norms, without the ``'stat'`` key.

Models are read through ``named_parameters()``, so torch itself is never imported here.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ['track_gradients_dists', 'track_params_dists']

PARAM_KINDS = {'weight': 'weights', 'bias': 'biases'}


def _layers(model) -> Iterator[tuple[str, str, Any]]:
    """(layer name, 'weights' | 'biases' | <param name>, parameter) for each parameter."""
    for full_name, parameter in model.named_parameters():
        layer, _, param_name = full_name.rpartition('.')
        kind = PARAM_KINDS.get(param_name)
        if kind is None or not layer:
            layer, kind = full_name, param_name
        yield layer, kind, parameter


def _norm(tensor) -> float:
    return float(tensor.detach().double().norm().item())


def _track_norms(model, run, data_type: str, step, epoch) -> None:
    for layer, kind, parameter in _layers(model):
        tensor = parameter if data_type == 'data' else parameter.grad
        if tensor is None:  # frozen layer, or backward() has not run yet
            continue
        run.track(_norm(tensor), name=layer, step=step, epoch=epoch,
                  context={'type': data_type, 'params': kind, 'stat': 'norm'})


def track_params_dists(model, run, step: int | None = None, epoch: int | None = None) -> None:
    """Track each layer's weight and bias norms (``context['type'] == 'data'``)."""
    _track_norms(model, run, 'data', step, epoch)


def track_gradients_dists(model, run, step: int | None = None,
                          epoch: int | None = None) -> None:
    """Track each layer's gradient norms (``context['type'] == 'gradients'``); call it
    after ``loss.backward()``."""
    _track_norms(model, run, 'gradients', step, epoch)
