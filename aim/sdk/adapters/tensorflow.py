"""TensorFlow ``tf.keras`` callback: ``model.fit(..., callbacks=[AimCallback()])``.

The same callback as ``aim.keras``, built on ``tf.keras.callbacks.Callback`` so that it
works with the Keras that TensorFlow ships (Keras 2 before TensorFlow 2.16, Keras 3
after).
"""
from __future__ import annotations

import tensorflow as tf

from aim.sdk.adapters.keras_callback import callback_class

__all__ = ['AimCallback']

AimCallback = callback_class(tf.keras.callbacks.Callback, __name__)
