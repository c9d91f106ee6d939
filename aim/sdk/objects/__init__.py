"""Rich objects that ``run.track()`` stores: ``Image``, ``Text``, ``Distribution``,
``Audio``, ``Figure`` (docs/objects.md).

How storage uses them, in three steps:

1. caller's thread, in ``track()``: ``meta, payload = obj._capture()`` (cheap: a copy of
   the raw input, no encoding);
2. storage thread: ``stored_meta, blob = encode(obj.KIND, meta, payload)`` (PNG, WAV,
   histogram, canonical JSON); ``blob`` is stored content-addressed, or is None when
   ``stored_meta`` holds everything;
3. reading: ``from_stored(kind, stored_meta, load_blob)`` rebuilds the object and calls
   ``load_blob()`` only when pixels, bytes or figure data are asked for.

Importing this package imports neither numpy nor PIL nor any optional library.
"""
from __future__ import annotations

from collections.abc import Callable

from aim.errors import TrackInputError
from aim.sdk.objects.audio import Audio, encode_audio
from aim.sdk.objects.base import AimObject
from aim.sdk.objects.distribution import Distribution, encode_distribution
from aim.sdk.objects.figure import Figure, encode_figure
from aim.sdk.objects.image import Image, convert_to_aim_image_list, encode_image
from aim.sdk.objects.text import Text, encode_text

KINDS: dict[str, type[AimObject]] = {cls.KIND: cls for cls in
                                     (Image, Text, Distribution, Audio, Figure)}
AIM_NAMES: dict[str, str] = {cls.AIM_NAME: cls.KIND for cls in KINDS.values()}

_ENCODERS: dict[str, Callable[[dict, bytes], tuple[dict, bytes | None]]] = {
    'image': encode_image, 'text': encode_text, 'distribution': encode_distribution,
    'audio': encode_audio, 'figure': encode_figure,
}


def _kind_class(kind: str) -> type[AimObject]:
    cls = KINDS.get(kind)
    if cls is None:
        raise TrackInputError(f'unknown object kind {kind!r}; known kinds: '
                              f'{", ".join(sorted(KINDS))}')
    return cls


def is_object(value: object) -> bool:
    """True for an Image, Text, Distribution, Audio or Figure."""
    return isinstance(value, AimObject)


def encode(kind: str, meta: dict, payload: bytes) -> tuple[dict, bytes | None]:
    """Storage thread: (stored metadata, blob or None) from what ``_capture()`` gave.

    The same object always gives the same blob bytes. Raises TrackInputError only for
    input that slipped past construction."""
    _kind_class(kind)
    if type(payload) is not bytes:   # a memoryview or bytearray from a journal reader
        payload = bytes(payload)
    return _ENCODERS[kind](meta, payload)


def from_stored(kind: str, meta: dict, blob: Callable[[], bytes] | None) -> AimObject:
    """The object rebuilt from ``encode``'s result; ``blob()`` is called lazily."""
    cls = _kind_class(kind)
    return cls._from_stored(meta, blob)  # type: ignore[attr-defined]


class _ObjectSequence:
    """Names of a sequence of tracked objects; the SDK's sequence classes extend these."""

    _NAME = ''
    _DTYPE = ''

    @classmethod
    def allowed_dtypes(cls) -> tuple[str, str]:
        return cls._DTYPE, f'list({cls._DTYPE})'

    @classmethod
    def sequence_name(cls) -> str:
        return cls._NAME


class Images(_ObjectSequence):
    _NAME, _DTYPE = 'images', Image.AIM_NAME


class Texts(_ObjectSequence):
    _NAME, _DTYPE = 'texts', Text.AIM_NAME


class Distributions(_ObjectSequence):
    _NAME, _DTYPE = 'distributions', Distribution.AIM_NAME


class Audios(_ObjectSequence):
    _NAME, _DTYPE = 'audios', Audio.AIM_NAME


class Figures(_ObjectSequence):
    _NAME, _DTYPE = 'figures', Figure.AIM_NAME


__all__ = ['AIM_NAMES', 'KINDS', 'AimObject', 'Audio', 'Audios', 'Distribution',
           'Distributions', 'Figure', 'Figures', 'Image', 'Images', 'Text', 'Texts',
           'convert_to_aim_image_list', 'encode', 'from_stored', 'is_object']
