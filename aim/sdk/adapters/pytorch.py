"""Per-layer histograms of a PyTorch model's weights and gradients.

``track_params_dists(model, run)`` and ``track_gradients_dists(model, run)`` track, for
every layer, a :class:`~aim.Distribution` (64 equal-width bins) of its weight values, and
one of its bias values, or of their gradients, with the names and contexts of Aim 3:

- a layer is named by its path of module names, each followed by its class name, joined
  with ``__``: ``fc.Linear``, ``encoder.Sequential__0.Linear``;
- the context is ``{'type': 'data' | 'gradients', 'params': 'weights' | 'biases'}``.

Aim reads ``weight`` and ``bias`` of the leaf modules only; here every parameter is
tracked: the ``weight``/``bias`` of any module as above, any other parameter
(``in_proj_weight`` of ``MultiheadAttention``, a ``cls_token``) with its own attribute
name as ``params``. Parameters of the model itself are under the model's class name.
A parameter shared by two modules is tracked under both names, as Aim does.

Models are walked through ``named_children()`` and ``named_parameters(recurse=False)``,
so torch itself is never imported here.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ['track_gradients_dists', 'track_params_dists']

PARAM_KINDS = {'weight': 'weights', 'bias': 'biases'}


def _layers(module, name: str) -> Iterator[tuple[str, str, Any]]:
    """(layer name, 'weights' | 'biases' | <attribute name>, parameter), depth first."""
    for attribute, parameter in module.named_parameters(recurse=False):
        yield name, PARAM_KINDS.get(attribute, attribute), parameter
    for child_name, child in module.named_children():
        yield from _layers(child, f'{name}__{child_name}.{type(child).__name__}')


def _model_layers(model) -> Iterator[tuple[str, str, Any]]:
    for attribute, parameter in model.named_parameters(recurse=False):
        yield type(model).__name__, PARAM_KINDS.get(attribute, attribute), parameter
    # Aim's names: the top-level children have no parent part
    for child_name, child in model.named_children():
        yield from _layers(child, f'{child_name}.{type(child).__name__}')


def _histogram_of(tensor, layer: str, kind: str) -> Any:
    """A Distribution of the tensor's values; None (after one warning) when they have
    none: an empty or not yet initialised (lazy) parameter, or only NaN/inf values."""
    from aim.errors import TrackInputError
    from aim.sdk.adapters.adapter_run import warn_once
    from aim.sdk.objects import Distribution
    if type(tensor).__name__.startswith('Uninitialized') or tensor.numel() == 0:
        return None
    try:
        return Distribution(tensor)
    except TrackInputError as e:    # all NaN: diverged training is not stopped here
        warn_once(f'pytorch-dists-{layer}-{kind}',
                  f'aim.pytorch: no histogram for {layer} {kind} ({e}); skipped')
        return None


def _track_dists(model, run, data_type: str, step, epoch) -> None:
    for layer, kind, parameter in _model_layers(model):
        tensor = parameter if data_type == 'data' else parameter.grad
        if tensor is None:  # frozen parameter, or backward() has not run yet
            continue
        dist = _histogram_of(tensor, layer, kind)
        if dist is not None:
            run.track(dist, name=layer, step=step, epoch=epoch,
                      context={'type': data_type, 'params': kind})


def track_params_dists(model, run, step: int | None = None, epoch: int | None = None) -> None:
    """Track a histogram of each layer's weights and biases (context
    ``{'type': 'data', 'params': 'weights' | 'biases'}``). Without ``step`` each call
    continues the series."""
    _track_dists(model, run, 'data', step, epoch)


def track_gradients_dists(model, run, step: int | None = None,
                          epoch: int | None = None) -> None:
    """Track a histogram of each layer's weight and bias gradients (context
    ``{'type': 'gradients', ...}``); call it after ``loss.backward()``. Parameters
    without a gradient (frozen, or before the first backward pass) are skipped."""
    _track_dists(model, run, 'gradients', step, epoch)
