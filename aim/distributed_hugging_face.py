"""``aim.distributed_hugging_face``: see :mod:`aim.sdk.adapters.distributed_hugging_face`."""
from aim.sdk.adapters.distributed_hugging_face import AimCallback

__all__ = ['AimCallback']
