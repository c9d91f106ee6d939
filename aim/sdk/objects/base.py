"""The base of the rich objects (images, texts, distributions, audio, figures) and the
helpers they share.

An object is built in the caller's thread by ``run.track(Image(...))``; construction
validates the input and keeps a private copy of it in a cheap form (raw pixels, raw
samples, a string). ``_capture()`` hands that copy to storage as ``(meta, payload)``;
the expensive work (PNG encoding, histograms, WAV writing, JSON canonicalisation) happens
later in ``encode`` on a background thread (see ``aim.sdk.objects``).

Nothing here imports numpy, PIL, plotly or matplotlib at import time: values of those
libraries are recognised by their class's module and name.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

from aim.errors import InputError, TrackInputError


class AimObject:
    """A value that ``run.track()`` stores as a rich object rather than a number."""

    __slots__ = ()

    AIM_NAME: ClassVar[str]
    KIND: ClassVar[str]

    def _capture(self) -> tuple[dict, bytes | memoryview]:
        """Caller's thread, inside ``track()``: a small JSON-able dict and the payload
        bytes that let ``encode`` rebuild the stored form later. The bytes are an
        immutable copy, never a view of memory the caller may change."""
        raise NotImplementedError

    def json(self) -> dict:
        raise NotImplementedError

    def _content(self) -> tuple:
        """What two objects of one class must share to be equal."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, AimObject)
        return self._content() == other._content()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, compared by content


# ---------------------------------------------------------------------------------------
# Recognising values of optional libraries without importing them

def type_name(value: object) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == 'builtins' else f'{module}.{cls.__qualname__}'


def is_instance_by_name(value: object, module_prefix: str, name: str) -> bool:
    """True when a class in ``type(value).__mro__`` is called ``name`` and lives in a
    module starting with ``module_prefix`` (e.g. 'PIL.', 'Image')."""
    for cls in type(value).__mro__:
        if cls.__name__ == name and (cls.__module__ + '.').startswith(module_prefix):
            return True
    return False


def is_numpy_array(value: object) -> bool:
    return type(value).__name__ == 'ndarray' and type(value).__module__ == 'numpy'


def is_torch_tensor(value: object) -> bool:
    cls = type(value)
    return cls.__module__.startswith('torch') and hasattr(value, 'detach') \
        and hasattr(value, 'cpu') and hasattr(value, 'numpy')


def is_pil_image(value: object) -> bool:
    return is_instance_by_name(value, 'PIL.', 'Image') and hasattr(value, 'tobytes')


def is_matplotlib_figure(value: object) -> bool:
    return is_instance_by_name(value, 'matplotlib.', 'Figure') and hasattr(value, 'savefig')


def torch_to_numpy(tensor: Any) -> Any:
    """A torch tensor as a numpy array (a copy on the CPU, detached from autograd)."""
    tensor = tensor.detach().cpu()
    if str(tensor.dtype) in ('torch.bfloat16', 'torch.float16'):
        tensor = tensor.float()
    return tensor.numpy()


def read_path(path: Any, what: str) -> bytes:
    """The bytes of the file at ``path`` (a str or os.PathLike), or a TrackInputError
    that names the path."""
    try:
        with open(os.fspath(path), 'rb') as f:
            return f.read()
    except OSError as exc:
        raise TrackInputError(f'{what}: cannot read the file {os.fspath(path)!r}: '
                              f'{exc.strerror or exc}') from exc


def read_file_like(value: Any, what: str) -> bytes:
    """The remaining bytes of a binary file object (io.BytesIO, an open file); the
    position is restored when the object can seek, so the caller may read it again."""
    try:
        pos = value.tell() if hasattr(value, 'seek') else None
    except (OSError, ValueError):
        pos = None
    data = value.read()
    if pos is not None:
        try:
            value.seek(pos)
        except (OSError, ValueError):
            pass
    if isinstance(data, str):
        raise TrackInputError(f'{what}: the file object is open in text mode; '
                              f"open it in binary mode ('rb') or pass its path")
    return bytes(data)


def require(module: str, pip_name: str, what: str) -> Any:
    """Import an optional library, or raise an ImportError that says how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f'{what} needs {pip_name}, which is not installed: '
                          f'pip install {pip_name}') from exc


def load_blob(loader: Callable[[], Any], what: str) -> bytes:
    """The stored bytes of an object, from the loader ``from_stored`` was given."""
    data = loader()
    if data is None:
        raise InputError(f'{what}: the stored data of this object is missing from the '
                         f'repository; `aim storage check` names what is damaged')
    return data if type(data) is bytes else bytes(data)


def check_caption(caption: Any, what: str) -> str:
    """A caption: a str that UTF-8 can hold (no lone surrogates)."""
    if not isinstance(caption, str):
        raise TrackInputError(f'{what}: caption must be a str, not {type_name(caption)}')
    if not caption.isascii():
        try:
            caption.encode('utf-8')
        except UnicodeEncodeError as exc:
            raise TrackInputError(f'{what}: the caption holds a lone surrogate at index '
                                  f'{exc.start}, which UTF-8 cannot store') from None
    return caption


def as_int(value: Any) -> int | None:
    """``value`` as an int when it is an integer (int, numpy or torch integer; not bool),
    else None."""
    if isinstance(value, bool):
        return None
    import operator
    try:
        return operator.index(value)
    except TypeError:
        return None


def short_repr(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit - 1] + '…')
