"""Keras 3 callback: ``model.fit(..., callbacks=[AimCallback(experiment='mnist')])``.

Works on every Keras 3 backend (torch, JAX, TensorFlow). For ``tf.keras`` of
TensorFlow releases that still ship Keras 2, use ``aim.tensorflow``.
"""
from __future__ import annotations

import keras

from aim.sdk.adapters.keras_callback import callback_class

__all__ = ['AimCallback']

AimCallback = callback_class(keras.callbacks.Callback, __name__)
