"""``Text``: a string tracked with ``run.track(Text(...), name=...)``; stored inline in
the object's metadata."""
from __future__ import annotations

from collections.abc import Callable

from aim.errors import TrackInputError
from aim.sdk.objects.base import AimObject, short_repr, type_name


class Text(AimObject):
    """A piece of text: ``Text(text)`` with ``text`` a str."""

    __slots__ = ('_text',)

    AIM_NAME = 'aim.text'
    KIND = 'text'

    def __init__(self, text: str):
        if text.__class__ is not str and not isinstance(text, str):
            raise TrackInputError(f'Text: expected a str, not {type_name(text)}; '
                                  f'convert it with str() first')
        self._text = text

    @property
    def data(self) -> str:
        return self._text

    def __str__(self) -> str:
        return self._text

    def json(self) -> dict:
        return {'data': self._text}

    def _content(self) -> tuple:
        return (self._text,)

    def __repr__(self) -> str:
        return f'<Text {short_repr(self._text)}, {len(self._text)} characters>'

    def _capture(self) -> tuple[dict, bytes]:
        try:
            return {}, self._text.encode('utf-8')
        except UnicodeEncodeError as exc:
            raise TrackInputError(
                f'Text: the string holds a lone surrogate ({exc.object[exc.start]!r} at '
                f'index {exc.start}), which UTF-8 cannot store; decode the source with '
                f"errors='replace'") from None

    @classmethod
    def _from_stored(cls, meta: dict, blob: Callable[[], bytes] | None) -> Text:
        self = cls.__new__(cls)
        self._text = meta['text'] if 'text' in meta else (blob() if blob else b'').decode()
        return self


def encode_text(meta: dict, payload: bytes) -> tuple[dict, None]:
    return {'text': payload.decode('utf-8')}, None
