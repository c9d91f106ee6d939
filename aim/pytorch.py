"""``aim.pytorch``: the pytorch adapter (see :mod:`aim.sdk.adapters.pytorch`)."""
from aim.sdk.adapters.pytorch import track_gradients_dists, track_params_dists

__all__ = ['track_gradients_dists', 'track_params_dists']
