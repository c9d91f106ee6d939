"""``aim.hugging_face``: the hugging_face adapter (see :mod:`aim.sdk.adapters.hugging_face`)."""
from aim.sdk.adapters.hugging_face import AimCallback

__all__ = ['AimCallback']
