"""``Audio``: a sound tracked with ``run.track(Audio(...), name=...)``.

Encoded audio (bytes, a file, a binary file object) is kept as it is after its first
bytes are checked; a numpy array of samples is written as a PCM WAV file (with the
standard library's ``wave``) in ``encode`` on the storage thread.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from aim.errors import InputError, TrackInputError
from aim.sdk.objects.base import (
    AimObject,
    as_int,
    check_caption,
    is_numpy_array,
    is_torch_tensor,
    load_blob,
    read_file_like,
    read_path,
    short_repr,
    torch_to_numpy,
    type_name,
)

FORMATS = ('wav', 'mp3', 'flac', 'ogg')
DEFAULT_RATE = 22050
_EXPECTED = {'wav': "'RIFF....WAVE'", 'mp3': "'ID3' or an MPEG frame sync (0xFFE/0xFFF)",
             'flac': "'fLaC'", 'ogg': "'OggS'"}
MAX_CHANNELS = 64
# numpy dtype kind+size -> WAV sample width in bytes (8-bit WAV is unsigned)
_PCM_WIDTH = {'u1': 1, 'i2': 2, 'i4': 4}


def sniff_format(data: bytes) -> str | None:
    """The audio format of encoded bytes, from their first bytes."""
    if data[:4] == b'RIFF' and data[8:12] == b'WAVE':
        return 'wav'
    if data.startswith(b'fLaC'):
        return 'flac'
    if data.startswith(b'OggS'):
        return 'ogg'
    if data.startswith(b'ID3') or (len(data) > 1 and data[0] == 0xFF
                                   and data[1] & 0xE0 == 0xE0):
        return 'mp3'
    return None


def _wav_rate(data: bytes) -> int | None:
    import wave
    try:
        with wave.open(io.BytesIO(data), 'rb') as w:
            return w.getframerate()
    except (wave.Error, EOFError):  # e.g. a float WAV, which `wave` cannot read
        return None


class Audio(AimObject):
    """A sound: ``Audio(data, format='wav', caption='', rate=22050)``.

    ``data`` is encoded audio (bytes, a file path, a binary file object such as
    io.BytesIO) in WAV, MP3, FLAC or OGG, or samples: a numpy array or torch tensor, 1-D
    (mono) or N×channels, float in [-1, 1] (written as 16-bit PCM) or int16 / int32 /
    uint8 PCM, written as a WAV file at ``rate`` samples a second.
    """

    __slots__ = ('_caption', '_format', '_rate', '_encoded', '_load_blob', '_samples',
                 '_dtype', '_channels')

    AIM_NAME = 'aim.audio'
    KIND = 'audio'

    def __init__(self, data: Any, format: str | None = 'wav', caption: str = '',
                 rate: int | None = DEFAULT_RATE):
        # format='' or None (older Aim's default): whatever the bytes are, WAV for samples
        fmt = format.lower().lstrip('.') if isinstance(format, str) and format else None
        if fmt is None and format not in ('', None) or fmt is not None and fmt not in FORMATS:
            raise TrackInputError(f'Audio: unknown format {format!r}; use one of '
                                  f'{", ".join(FORMATS)}')
        if rate is None:
            rate = DEFAULT_RATE
        rate_int = as_int(rate)
        if rate_int is None or not 0 < rate_int < 2 ** 31:
            raise TrackInputError(f'Audio: rate must be a positive int (samples a second), '
                                  f'not {rate!r}')
        rate = rate_int
        self._caption = check_caption(caption, 'Audio')
        self._format: str = fmt or 'wav'
        self._rate = rate
        self._encoded: bytes | None = None
        self._load_blob: Callable[[], bytes] | None = None
        self._samples: bytes | None = None
        self._dtype = ''
        self._channels = 0

        if is_numpy_array(data) or is_torch_tensor(data):
            self._set_samples(torch_to_numpy(data) if is_torch_tensor(data) else data)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            self._set_encoded(bytes(data), 'the bytes', fmt)
        elif isinstance(data, (str, os.PathLike)):
            self._set_encoded(read_path(data, 'Audio'), f'the file {os.fspath(data)!r}', fmt)
        elif hasattr(data, 'read'):
            self._set_encoded(read_file_like(data, 'Audio'), 'the file object', fmt)
        elif hasattr(type(data), '__array__'):  # TensorFlow, JAX, CuPy... arrays
            import numpy as np
            self._set_samples(np.asarray(data))
        else:
            raise TrackInputError(
                f'Audio: cannot make audio from {type_name(data)}; pass bytes, a file path '
                f'or a binary file object holding WAV, MP3, FLAC or OGG, or a numpy array '
                f'of samples')

    def _set_encoded(self, data: bytes, source: str, expected: str | None) -> None:
        found = sniff_format(data)
        if found is None:
            if expected is None:
                what = 'WAV, MP3, FLAC or OGG audio: expected them to start with ' + \
                    ', '.join(_EXPECTED.values())
            else:
                what = f'{expected.upper()} audio: expected them to start with ' \
                    f'{_EXPECTED[expected]}'
            are, they = ('are', 'they') if source == 'the bytes' else ('is', 'it')
            raise TrackInputError(f'Audio: {source} {are} not {what}, but {they} start'
                                  f'{"" if they == "they" else "s"} with {data[:12]!r}')
        # the bytes say what they are; a format= that disagrees was a mislabel
        self._format = found
        self._encoded = data
        if found == 'wav':
            self._rate = _wav_rate(data) or self._rate

    def _set_samples(self, arr: Any) -> None:
        import numpy as np
        if self._format != 'wav':
            raise TrackInputError(f"Audio: samples are written as WAV; pass format='wav', "
                                  f'not {self._format!r}, or pass encoded {self._format} '
                                  f'bytes')
        if arr.ndim == 1:
            channels = 1
        elif arr.ndim == 2 and 1 <= arr.shape[1] <= MAX_CHANNELS:
            channels = arr.shape[1]
        else:
            hint = '; transpose a channels×N array (array.T)' if arr.ndim == 2 else ''
            raise TrackInputError(f'Audio: samples of shape {arr.shape} are not N (mono) or '
                                  f'N×channels (up to {MAX_CHANNELS} channels){hint}')
        if arr.shape[0] == 0:
            raise TrackInputError('Audio: the array holds no samples')
        kind = arr.dtype.kind
        if kind == 'f':
            if not np.isfinite(arr).all():
                raise TrackInputError('Audio: the samples hold NaN or infinite values')
            arr = arr.astype(np.float32)
        elif f'{kind}{arr.dtype.itemsize}' not in _PCM_WIDTH:
            raise TrackInputError(f'Audio: samples of dtype {arr.dtype} are not supported; '
                                  f'pass float samples in [-1, 1] or int16, int32 or uint8 '
                                  f'PCM')
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder('='))
        self._samples = np.ascontiguousarray(arr).tobytes()
        self._dtype = arr.dtype.str
        self._channels = channels

    # -- reading ---------------------------------------------------------------------

    @classmethod
    def _from_stored(cls, meta: dict, blob: Callable[[], bytes] | None) -> Audio:
        self = cls.__new__(cls)
        self._caption = meta.get('caption', '')
        self._format = meta.get('format', 'wav')
        self._rate = meta.get('rate', 22050)
        self._encoded = None
        self._load_blob = blob
        self._samples = None
        self._dtype = ''
        self._channels = 0
        return self

    def _bytes(self) -> bytes:
        if self._encoded is None:
            if self._load_blob is not None:
                self._encoded = load_blob(self._load_blob, 'Audio')
            else:
                self._encoded = encode_audio(*self._capture())[1]
        return self._encoded

    @property
    def caption(self) -> str:
        return self._caption

    @property
    def format(self) -> str:
        return self._format

    @property
    def rate(self) -> int:
        return self._rate

    def get(self) -> io.BytesIO:
        """The encoded audio (what is stored) as a BytesIO."""
        return io.BytesIO(self._bytes())

    def to_numpy(self) -> Any:
        """The PCM samples of a WAV: shape (N,) for mono, (N, channels) otherwise, in the
        file's integer type (uint8, int16 or int32)."""
        import wave

        import numpy as np
        if self._format != 'wav':
            raise InputError(f'Audio.to_numpy() decodes WAV only; this audio is '
                             f'{self._format}: read get() with a decoder for it')
        try:
            with wave.open(io.BytesIO(self._bytes()), 'rb') as w:
                width, channels = w.getsampwidth(), w.getnchannels()
                frames = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as exc:
            raise InputError(f'Audio.to_numpy(): the WAV cannot be read: {exc}') from exc
        dtype: Any = {1: np.dtype('u1'), 2: np.dtype('<i2'), 4: np.dtype('<i4')}.get(width)
        if dtype is None:
            raise InputError(f'Audio.to_numpy(): {8 * width}-bit WAV samples are not '
                             f'supported')
        samples = np.frombuffer(frames, dtype=dtype)
        return samples if channels == 1 else samples.reshape(-1, channels)

    def json(self) -> dict:
        return {'caption': self._caption, 'format': self._format, 'rate': self._rate}

    def _content(self) -> tuple:
        return self._caption, self._format, self._rate, self._bytes()

    def __repr__(self) -> str:
        caption = f', caption={short_repr(self._caption)}' if self._caption else ''
        return f'<Audio format={self._format!r}, rate={self._rate}{caption}>'

    # -- storing -----------------------------------------------------------------------

    def _capture(self) -> tuple[dict, bytes]:
        meta = {'caption': self._caption, 'format': self._format, 'rate': self._rate}
        if self._samples is not None:
            meta.update(dtype=self._dtype, channels=self._channels)
            return meta, self._samples
        return meta, self._bytes()


def _wav_bytes(samples: Any, channels: int, rate: int) -> bytes:
    import wave

    import numpy as np
    if samples.dtype.kind == 'f':
        samples = np.rint(np.clip(samples, -1.0, 1.0) * 32767.0).astype('<i2')
    width = samples.dtype.itemsize
    samples = samples.astype(samples.dtype.newbyteorder('<'))  # WAV is little-endian
    buf = io.BytesIO()
    with wave.open(buf, 'wb') as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def encode_audio(meta: dict, payload: bytes) -> tuple[dict, bytes]:
    """Storage thread: (caption, format, rate) and the encoded audio bytes."""
    stored = {'caption': meta.get('caption', ''), 'format': meta.get('format', 'wav'),
              'rate': int(meta.get('rate', 22050))}
    if 'dtype' in meta:
        import numpy as np
        samples: Any = np.frombuffer(payload, dtype=np.dtype(str(meta['dtype'])))
        return stored, _wav_bytes(samples, int(meta['channels']), stored['rate'])
    if sniff_format(payload) is None:
        raise TrackInputError(f'Audio: the bytes are not WAV, MP3, FLAC or OGG audio '
                              f'(they start with {payload[:12]!r})')
    return stored, payload
