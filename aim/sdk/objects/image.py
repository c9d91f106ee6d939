"""``Image``: a picture tracked with ``run.track(Image(...), name=...)``.

Construction keeps either the raw pixels (uint8, row-major, in PIL mode 'L', 'LA',
'RGB' or 'RGBA') or, for a file, its encoded bytes as they are. Encoding to PNG (or the
format asked for) happens in ``encode`` on the storage thread.
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
    is_matplotlib_figure,
    is_numpy_array,
    is_pil_image,
    is_torch_tensor,
    load_blob,
    read_file_like,
    read_path,
    require,
    short_repr,
    torch_to_numpy,
    type_name,
)

# format name -> PIL's name for it
FORMATS = {'png': 'PNG', 'jpeg': 'JPEG', 'webp': 'WEBP', 'gif': 'GIF', 'bmp': 'BMP',
           'tiff': 'TIFF'}
_ALIASES = {'jpg': 'jpeg', 'tif': 'tiff'}
_CHANNEL_MODES = {1: 'L', 2: 'LA', 3: 'RGB', 4: 'RGBA'}
_MODE_CHANNELS = {'L': 1, 'LA': 2, 'RGB': 3, 'RGBA': 4}
_ACCEPTED = ('a PIL image, a numpy array (H×W, H×W×C or C×H×W with C in 1, 3, 4), '
             'a torch tensor (C×H×W), another array type numpy can read, a file path, '
             'bytes or a binary file object holding an encoded image, or a matplotlib '
             'figure')


def _pil() -> Any:
    return require('PIL.Image', 'Pillow', 'Reading and encoding images')


def normalize_format(format: Any) -> str:
    name = str(format).lower().lstrip('.') if isinstance(format, str) else None
    name = _ALIASES.get(name, name) if name else name
    if name not in FORMATS:
        raise TrackInputError(f'Image: unknown format {format!r}; use one of '
                              f'{", ".join(sorted(FORMATS))}')
    return name


def sniff_format(data: bytes) -> str | None:
    """The image format of encoded bytes, from their first bytes."""
    if data.startswith(b'\x89PNG\r\n\x1a\n'):
        return 'png'
    if data.startswith(b'\xff\xd8\xff'):
        return 'jpeg'
    if data.startswith((b'GIF87a', b'GIF89a')):
        return 'gif'
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'webp'
    if data.startswith(b'BM'):
        return 'bmp'
    if data.startswith((b'II*\x00', b'MM\x00*')):
        return 'tiff'
    return None


def _pixels_from_array(arr: Any, *,
                       channels_first: bool = False) -> tuple[bytes, str, int, int, bool]:
    """(raw uint8 pixels, mode, width, height, planar) from a numpy array; planar pixels
    are C×H×W, as given: interleaving them is a strided copy, left to ``encode``."""

    shape = arr.shape
    transpose = False
    if arr.ndim == 3:
        if channels_first and shape[0] in (1, 3, 4):
            transpose = True
        elif shape[2] not in (1, 3, 4) and shape[0] in (1, 3, 4):
            transpose = True
        elif shape[2] not in (1, 3, 4):
            raise TrackInputError(
                f'Image: an array of shape {shape} has no channel axis of size 1, 3 or 4; '
                f'pass H×W (greyscale), H×W×C or C×H×W with C = 1, 3 or 4')
    elif arr.ndim != 2:
        hint = '; drop the batch axis (array[0]) or track a list of images' \
            if arr.ndim == 4 else ''
        raise TrackInputError(f'Image: an array of shape {shape} is not an image: pass '
                              f'H×W, H×W×C or C×H×W with C = 1, 3 or 4{hint}')
    if 0 in shape:
        raise TrackInputError(f'Image: an array of shape {shape} has no pixels')

    # values first, on the array as laid out (contiguous for a C×H×W tensor), then axes
    arr = _to_uint8(arr)
    if transpose:
        channels, height, width = arr.shape
    else:
        height, width = arr.shape[:2]
        channels = arr.shape[2] if arr.ndim == 3 else 1
    # tobytes() copies in C order whatever the strides: the caller may change `arr` later
    return arr.tobytes(), _CHANNEL_MODES[channels], width, height, transpose and channels > 1


def _to_uint8(arr: Any) -> Any:
    import numpy as np

    kind = arr.dtype.kind
    if kind == 'b':
        arr = arr.astype(np.uint8) * np.uint8(255)
    elif arr.dtype == np.uint8:
        pass
    elif kind == 'f':
        lo, hi = float(arr.min()), float(arr.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise TrackInputError(f'Image: the {arr.dtype} array holds NaN or infinite '
                                  f'values; replace them before tracking')
        if lo >= 0.0 and hi <= 1.0:
            # in the array's own float type (float32 stays float32: half the memory)
            scaled = np.multiply(arr, arr.dtype.type(255.0), dtype=arr.dtype)
            arr = np.rint(scaled, out=scaled).astype(np.uint8)
        elif lo >= 0.0 and hi <= 255.0:
            arr = np.rint(arr).astype(np.uint8)
        else:
            hint = ' (for an image in [-1, 1], pass (x + 1) / 2)' if lo >= -1.0 and hi <= 1.0 \
                else ''
            raise TrackInputError(
                f'Image: float pixel values must lie in [0, 1] (scaled to 0..255) or in '
                f'[0, 255]; this {arr.dtype} array holds {lo:g}..{hi:g}: normalize it '
                f'first{hint}')
    elif kind in 'iu':
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise TrackInputError(
                f'Image: integer pixel values must lie in 0..255; this {arr.dtype} array '
                f'holds {lo}..{hi}: scale it to uint8 first (or pass the file path of a '
                f'16-bit image to keep its bytes)')
        arr = arr.astype(np.uint8)
    else:
        raise TrackInputError(f'Image: an array of dtype {arr.dtype} is not an image; '
                              f'pass uint8, float (0..1), bool or integer (0..255) pixels')
    return arr


def _pixels_from_pil(img: Any) -> tuple[bytes, str, int, int, bool]:
    mode = img.mode
    if mode in _MODE_CHANNELS:
        return img.tobytes(), mode, img.width, img.height, False
    if mode in ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F'):
        import numpy as np
        return _pixels_from_array(np.asarray(img))
    if mode in ('P', 'PA'):
        has_alpha = mode == 'PA' or 'transparency' in img.info
        img = img.convert('RGBA' if has_alpha else 'RGB')
    elif mode == '1':
        img = img.convert('L')
    else:  # CMYK, YCbCr, LAB, HSV, ...
        img = img.convert('RGB')
    return img.tobytes(), img.mode, img.width, img.height, False


class Image(AimObject):
    """An image: ``Image(image, caption='', format='png', optimize=False, quality=90)``.

    ``image`` is a PIL image, a numpy array, a torch tensor, a file path (its bytes are
    kept as they are, in the file's own format), bytes or a binary file object holding an
    encoded image, or a matplotlib figure (rendered to PNG). ``format`` is how pixels are
    stored: png (lossless, the default), jpeg, webp, gif, bmp or tiff.
    """

    __slots__ = ('_caption', '_format', '_optimize', '_quality', '_pixels', '_planar', '_mode',
                 '_width', '_height', '_encoded', '_load_blob')

    AIM_NAME = 'aim.image'
    KIND = 'image'

    def __init__(self, image: Any, caption: str = '', format: str = 'png',
                 optimize: bool = False, quality: int = 90):
        quality_int = as_int(quality)
        if quality_int is None or not 0 <= quality_int <= 100:
            raise TrackInputError(f'Image: quality must be an int in 0..100, not {quality!r}')
        quality = quality_int
        self._caption = check_caption(caption, 'Image')
        self._format = normalize_format(format)
        self._optimize = bool(optimize)
        self._quality = quality
        self._pixels: bytes | None = None
        self._planar = False
        self._mode: str | None = None
        self._width: int | None = None
        self._height: int | None = None
        self._encoded: bytes | None = None
        self._load_blob: Callable[[], bytes] | None = None

        if is_numpy_array(image):
            self._set_pixels(*_pixels_from_array(image))
        elif is_torch_tensor(image):
            self._set_pixels(*_pixels_from_array(torch_to_numpy(image), channels_first=True))
        elif is_pil_image(image):
            self._set_pixels(*_pixels_from_pil(image))
        elif isinstance(image, (str, os.PathLike)):
            self._set_encoded(read_path(image, 'Image'), f'the file {os.fspath(image)!r}')
        elif isinstance(image, (bytes, bytearray, memoryview)):
            self._set_encoded(bytes(image), 'the bytes')
        elif hasattr(image, 'read'):
            self._set_encoded(read_file_like(image, 'Image'), 'the file object')
        elif is_matplotlib_figure(image):
            buf = io.BytesIO()
            image.savefig(buf, format='png')
            self._set_encoded(buf.getvalue(), 'the rendered figure')
        elif hasattr(type(image), '__array__'):  # TensorFlow, JAX, CuPy... arrays: H×W×C
            import numpy as np
            self._set_pixels(*_pixels_from_array(np.asarray(image)))
        else:
            raise TrackInputError(f'Image: cannot make an image from {type_name(image)}; '
                                  f'pass {_ACCEPTED}')

    def _set_pixels(self, pixels: bytes, mode: str, width: int, height: int,
                    planar: bool) -> None:
        self._pixels, self._mode, self._width, self._height = pixels, mode, width, height
        self._planar = planar

    def _set_encoded(self, data: bytes, source: str) -> None:
        fmt = sniff_format(data)
        if fmt is None:
            raise TrackInputError(
                f'Image: {source} is not a PNG, JPEG, GIF, WEBP, BMP or TIFF image '
                f'(it starts with {data[:8]!r})')
        self._encoded = data
        self._format = fmt

    # -- reading ---------------------------------------------------------------------

    @classmethod
    def _from_stored(cls, meta: dict, blob: Callable[[], bytes] | None) -> Image:
        self = cls.__new__(cls)
        self._caption = meta.get('caption', '')
        self._format = meta.get('format', 'png')
        self._optimize = False
        self._quality = 90
        self._pixels = None
        self._planar = False
        self._mode = meta.get('mode')
        self._width = meta.get('width')
        self._height = meta.get('height')
        self._encoded = None
        self._load_blob = blob
        return self

    def _encoded_bytes(self) -> bytes | None:
        if self._encoded is None and self._load_blob is not None:
            self._encoded = load_blob(self._load_blob, 'Image')
        return self._encoded

    def _read_header(self) -> None:
        data = self._encoded_bytes()
        if data is None:
            raise InputError('Image: this stored image has no pixel data to read')
        PILImage = _pil()
        with PILImage.open(io.BytesIO(data)) as img:
            self._width, self._height = img.size
            self._mode = img.mode

    @property
    def caption(self) -> str:
        return self._caption

    @property
    def format(self) -> str:
        return self._format

    @property
    def width(self) -> int:
        if self._width is None:
            self._read_header()
        assert self._width is not None
        return self._width

    @property
    def height(self) -> int:
        if self._height is None:
            self._read_header()
        assert self._height is not None
        return self._height

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def to_pil_image(self) -> Any:
        """The image as a PIL image: the pixels given, or the stored file decoded."""
        PILImage = _pil()
        if self._pixels is not None:
            assert self._mode is not None and self._width is not None \
                and self._height is not None
            return PILImage.frombytes(self._mode, (self._width, self._height),
                                      _interleaved(self._pixels, self._mode, self._width,
                                                   self._height, self._planar))
        data = self._encoded_bytes()
        if data is None:
            raise InputError('Image: this stored image has no pixel data to read')
        img = PILImage.open(io.BytesIO(data))
        img.load()
        return img

    def get(self) -> io.BytesIO:
        """The encoded image (what is stored) as a BytesIO."""
        data = self._encoded_bytes()
        if data is None:
            data = encode_image(*self._capture())[1]
        return io.BytesIO(data)

    def json(self) -> dict:
        return {'caption': self.caption, 'format': self.format,
                'width': self.width, 'height': self.height}

    def _content(self) -> tuple:
        data = self._encoded_bytes()
        if data is not None:
            img = self.to_pil_image()
            pixels = (img.mode, img.size, img.tobytes())
        else:
            assert self._mode is not None and self._width is not None \
                and self._height is not None and self._pixels is not None
            pixels = (self._mode, (self._width, self._height),
                      _interleaved(self._pixels, self._mode, self._width, self._height,
                                   self._planar))
        return self._caption, self._format, pixels

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Image)
        if self._caption != other._caption or self._format != other._format:
            return False
        mine, theirs = self._encoded_bytes(), other._encoded_bytes()
        if mine is not None and mine == theirs:
            return True
        return self._content() == other._content()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        dims = f'{self._width}×{self._height}' if self._width is not None else 'size unread'
        mode = f' {self._mode}' if self._mode else ''
        caption = f', caption={short_repr(self._caption)}' if self._caption else ''
        return f'<Image {dims}{mode}, format={self._format!r}{caption}>'

    # -- storing -----------------------------------------------------------------------

    def _capture(self) -> tuple[dict, bytes]:
        if self._pixels is not None:
            return ({'caption': self._caption, 'format': self._format, 'mode': self._mode,
                     'width': self._width, 'height': self._height,
                     'quality': self._quality, 'optimize': self._optimize,
                     'planar': self._planar},
                    self._pixels)
        data = self._encoded_bytes()
        if data is None:
            raise TrackInputError('Image: this stored image has no data to track')
        return {'caption': self._caption, 'format': self._format, 'encoded': True}, data


def encode_image(meta: dict, payload: bytes) -> tuple[dict, bytes]:
    """Storage thread: (stored meta, encoded image bytes). See ``aim.sdk.objects.encode``."""
    PILImage = _pil()

    caption = meta.get('caption', '')
    if meta.get('encoded'):
        try:
            with PILImage.open(io.BytesIO(payload)) as header:
                (width, height), mode, pil_format = header.size, header.mode, header.format
        except Exception as exc:  # PIL raises many kinds for a damaged file
            raise TrackInputError(f'Image: the image file cannot be read: {exc}') from exc
        fmt = str(pil_format or meta.get('format') or '').lower()
        fmt = _ALIASES.get(fmt, fmt)
        return ({'caption': caption, 'format': fmt, 'width': width, 'height': height,
                 'mode': mode}, payload)

    fmt = normalize_format(meta.get('format', 'png'))
    mode, width, height = meta['mode'], meta['width'], meta['height']
    if len(payload) != width * height * _MODE_CHANNELS.get(mode, 0):
        raise TrackInputError(f'Image: {len(payload)} bytes of pixels do not make a '
                              f'{width}×{height} {mode} image')
    pixels = _interleaved(payload, mode, width, height, bool(meta.get('planar')))
    img: Any = PILImage.frombytes(mode, (width, height), pixels)
    quality, optimize = int(meta.get('quality', 90)), bool(meta.get('optimize', False))
    if fmt == 'jpeg':
        if mode in ('RGBA', 'LA'):  # JPEG has no alpha: composite onto white
            base = PILImage.new('RGB' if mode == 'RGBA' else 'L', img.size, 'white')
            base.paste(img.convert(base.mode), mask=img.getchannel('A'))
            img = base
        options: dict = {'quality': quality, 'optimize': optimize}
    elif fmt == 'webp':
        options = {'quality': quality}
    elif fmt == 'png':
        options = {'optimize': optimize}
    else:
        options = {}
    buf = io.BytesIO()
    try:
        img.save(buf, FORMATS[fmt], **options)
    except (OSError, ValueError, KeyError):  # a mode this format cannot hold
        img = img.convert('RGBA' if 'A' in img.mode else 'RGB')
        buf = io.BytesIO()
        img.save(buf, FORMATS[fmt], **options)
    data = buf.getvalue()
    stored_mode = img.mode
    if fmt not in ('png', 'jpeg'):  # the format may have changed the mode (GIF: a palette)
        with PILImage.open(io.BytesIO(data)) as saved:
            stored_mode = saved.mode
    return ({'caption': caption, 'format': fmt, 'width': width, 'height': height,
             'mode': stored_mode}, data)


def _interleaved(pixels: bytes, mode: str, width: int, height: int, planar: bool) -> bytes:
    """Pixels in PIL's row-major, channel-interleaved order."""
    if not planar:
        return pixels
    import numpy as np
    planes = np.frombuffer(pixels, dtype=np.uint8).reshape(_MODE_CHANNELS[mode], height, width)
    return planes.transpose(1, 2, 0).tobytes()


def convert_to_aim_image_list(images: Any, labels: Any = None) -> list[Image]:
    """A list of ``Image`` from a sequence (or a batch array/tensor) of images; each
    label (a sequence of the same length, or an array/tensor) becomes its caption."""
    if labels is None:
        captions = [''] * len(images)
    else:
        items = labels.tolist() if hasattr(labels, 'tolist') else list(labels)
        if len(items) != len(images):
            raise TrackInputError(f'convert_to_aim_image_list: {len(images)} images but '
                                  f'{len(items)} labels; pass one label per image')
        captions = [str(label) for label in items]
    return [Image(image, caption=caption) for image, caption in zip(images, captions)]
