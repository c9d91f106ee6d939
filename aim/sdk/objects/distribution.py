"""``Distribution``: a histogram tracked with ``run.track(Distribution(...), name=...)``.

From samples, construction only validates and copies them; the histogram (``bin_count``
equal-width bins over the finite samples' [min, max], as ``np.histogram`` makes it, in
float64) is computed on first use or in ``encode`` on the storage thread. Non-finite
samples (NaN, ±inf) are left out of the histogram; their number is kept as
``nonfinite_count``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aim.errors import TrackInputError
from aim.sdk.objects.base import (
    AimObject,
    as_int,
    is_numpy_array,
    is_torch_tensor,
    torch_to_numpy,
    type_name,
)

MAX_BIN_COUNT = 512


def _check_bin_count(bin_count: Any, what: str = 'bin_count') -> int:
    count = as_int(bin_count)
    if count is None:
        raise TrackInputError(f'Distribution: {what} must be an int in 1..{MAX_BIN_COUNT}, '
                              f'not {type_name(bin_count)}')
    if not 1 <= count <= MAX_BIN_COUNT:
        raise TrackInputError(f'Distribution: {what} must be in 1..{MAX_BIN_COUNT}, '
                              f'not {count}')
    return count


def _as_numbers(values: Any, what: str) -> Any:
    """A flat numpy array (a copy) of real numbers."""
    import numpy as np
    if is_torch_tensor(values):
        values = torch_to_numpy(values)
    try:
        arr = np.array(values, copy=True)
    except (ValueError, TypeError) as exc:
        raise TrackInputError(f'Distribution: {what} must be numbers; {exc}') from None
    if arr.dtype.kind == 'b':
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind not in 'iuf':
        raise TrackInputError(f'Distribution: {what} must be real numbers (floats, ints '
                              f'of up to 64 bits), not an array of dtype {arr.dtype}')
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder('='))
    return arr.reshape(-1)


class Distribution(AimObject):
    """A histogram: ``Distribution(samples, bin_count=64)`` or
    ``Distribution(hist=weights, bin_range=(lo, hi))``."""

    __slots__ = ('_samples', '_bin_count', '_weights', '_range', '_nonfinite')

    AIM_NAME = 'aim.distribution'
    KIND = 'distribution'

    def __init__(self, samples: Any = None, bin_count: int = 64, *, hist: Any = None,
                 bin_range: Any = None):
        self._weights: Any = None
        self._range: tuple[float, float] | None = None
        self._nonfinite = 0
        if samples is not None:
            if hist is not None or bin_range is not None:
                raise TrackInputError('Distribution: pass samples, or hist and bin_range, '
                                      'not both')
            self._bin_count = _check_bin_count(bin_count)
            self._samples = self._check_samples(samples)
        elif hist is not None:
            if bin_range is None:
                raise TrackInputError('Distribution: hist needs bin_range=(low, high)')
            self._samples = None
            self._set_histogram(hist, bin_range)
        else:
            raise TrackInputError('Distribution: pass samples, or hist and bin_range')

    @staticmethod
    def _check_samples(samples: Any) -> Any:
        if is_numpy_array(samples) and samples.dtype.kind == 'f' and samples.dtype.isnative:
            arr = samples.reshape(-1).copy()  # the common case, kept short
        else:
            arr = _as_numbers(samples, 'samples')
        if arr.size == 0:
            raise TrackInputError('Distribution: samples are empty; a histogram needs at '
                                  'least one finite number')
        if arr.dtype.kind == 'f':
            import numpy as np
            if not np.isfinite(arr).any():
                raise TrackInputError(f'Distribution: all {arr.size} samples are NaN or '
                                      f'infinite; a histogram needs a finite number')
        return arr

    def _set_histogram(self, hist: Any, bin_range: Any) -> None:
        import numpy as np
        weights = _as_numbers(hist, 'hist').astype(np.float64)
        self._bin_count = _check_bin_count(weights.size, 'the number of hist weights')
        if not np.isfinite(weights).all():
            raise TrackInputError('Distribution: hist weights must be finite numbers')
        try:
            lo, hi = (float(v) for v in bin_range)
        except (TypeError, ValueError):
            raise TrackInputError(f'Distribution: bin_range must be two numbers (low, high), '
                                  f'not {bin_range!r}') from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise TrackInputError(f'Distribution: bin_range must be finite with low < high, '
                                  f'not {bin_range!r}')
        self._weights = weights
        self._range = (lo, hi)

    @classmethod
    def from_histogram(cls, hist: Any, bin_range: Any) -> Distribution:
        return cls(hist=hist, bin_range=bin_range)

    @classmethod
    def from_samples(cls, samples: Any, bin_count: int = 64) -> Distribution:
        return cls(samples, bin_count)

    def _histogram(self) -> None:
        if self._weights is not None:
            return
        weights, lo, hi, nonfinite = _histogram(self._samples, self._bin_count)
        self._weights, self._range, self._nonfinite = weights, (lo, hi), nonfinite
        self._samples = None

    @property
    def bin_count(self) -> int:
        return self._bin_count

    @property
    def range(self) -> list[float]:
        self._histogram()
        assert self._range is not None
        return list(self._range)

    @property
    def weights(self) -> Any:
        """The count (or weight) of each bin, a float64 numpy array."""
        self._histogram()
        return self._weights

    @property
    def ranges(self) -> Any:
        """The bin edges: ``bin_count + 1`` floats from ``range[0]`` to ``range[1]``."""
        lo, hi = self.range
        return _edges(lo, hi, self._bin_count)

    @property
    def nonfinite_count(self) -> int:
        """How many samples were NaN or infinite and left out of the histogram."""
        self._histogram()
        return self._nonfinite

    def to_np_histogram(self) -> tuple[Any, Any]:
        """(weights, bin edges), as ``np.histogram`` returns them."""
        return self.weights, self.ranges

    def json(self) -> dict:
        return {'bin_count': self.bin_count, 'range': self.range,
                'weights': self.weights.tolist()}

    def _content(self) -> tuple:
        return self.bin_count, self.range, self.weights.tolist()

    def __repr__(self) -> str:
        if self._weights is None:
            return f'<Distribution of {self._samples.size} samples, {self._bin_count} bins>'
        lo, hi = self._range or (0.0, 0.0)
        return f'<Distribution {self._bin_count} bins over [{lo:g}, {hi:g}]>'

    def _capture(self) -> tuple[dict, bytes | memoryview]:
        if self._weights is not None:  # already computed (or given): send the histogram
            lo, hi = self._range or (0.0, 0.0)
            return ({'source': 'hist', 'bin_range': [lo, hi], 'nonfinite': self._nonfinite},
                    self._weights.tobytes())
        # the samples are this object's own copy (taken at construction): handed over as
        # a view, which the writer copies into its journal before track() returns
        samples = self._samples
        payload = memoryview(samples).cast('B') if samples.flags.c_contiguous else \
            samples.tobytes()
        return ({'source': 'samples', 'bin_count': self._bin_count,
                 'dtype': samples.dtype.str}, payload)

    @classmethod
    def _from_stored(cls, meta: dict, blob: Callable[[], bytes] | None) -> Distribution:
        import numpy as np
        self = cls.__new__(cls)
        self._samples = None
        self._weights = np.asarray(meta['weights'], dtype=np.float64)
        self._bin_count = int(self._weights.size)
        lo, hi = meta['range']
        self._range = (float(lo), float(hi))
        self._nonfinite = int(meta.get('nonfinite', 0))
        return self


# Past this magnitude numpy's edge arithmetic can overflow (a span past 1.8e308, or a
# rounding up at the top of the float range): such samples are binned scaled by _SCALE, a
# power of two, so that the scaling is exact and the edges are numpy's, scaled.
_HUGE = 2.0 ** 1000
_SCALE = 2.0 ** -8
_FLOAT_MAX = 1.7976931348623157e308


def _scale_for(lo: float, hi: float) -> float:
    return 1.0 if max(-lo, hi) < _HUGE else _SCALE


def _increasing(edges: Any) -> bool:
    return bool((edges[1:] > edges[:-1]).all())


def _histogram(samples: Any, bin_count: int) -> tuple[Any, float, float, int]:
    """(float64 weights, low, high, number of non-finite samples left out).

    numpy's histogram of the finite samples in float64: ``bin_count`` equal bins over
    [min, max], a single value v over [v - 0.5, v + 0.5]. Where numpy cannot make the
    bins (a span past the float range, a span too narrow for distinct edges, one value so
    large that ±0.5 is lost) the edges are still finite and increasing: the range is
    [min - 0.5, max + 0.5], or else widened by max(|min|, |max|)·2⁻²⁰ on each side."""
    import numpy as np
    samples = samples.astype(np.float64, copy=False)
    finite = np.isfinite(samples)
    nonfinite = 0
    if not finite.all():
        samples = samples[finite]
        nonfinite = int(finite.size - samples.size)
    if samples.size == 0:
        raise TrackInputError('Distribution: no finite samples to make a histogram of')
    lo, hi = float(samples.min()), float(samples.max())
    scale = _scale_for(lo, hi)
    if scale != 1.0:
        samples, lo, hi = samples * scale, lo * scale, hi * scale
    if lo == hi or not _increasing(np.linspace(lo, hi, bin_count + 1)):
        # numpy's range for one value; then, where ±0.5 is lost (huge values) or too
        # coarse (a span of a few subnormals), a relative margin
        top = _FLOAT_MAX * scale
        margin = max(abs(lo), abs(hi)) * 2.0 ** -20
        for low, high in ((lo - 0.5 * scale, hi + 0.5 * scale),
                          (max(lo - margin, -top), min(hi + margin, top))):
            if _increasing(np.linspace(low, high, bin_count + 1)):
                lo, hi = low, high
                break
    counts, edges = np.histogram(samples, bins=bin_count, range=(lo, hi))
    return counts.astype(np.float64), float(edges[0]) / scale, float(edges[-1]) / scale, \
        nonfinite


def _edges(lo: float, hi: float, bin_count: int) -> Any:
    """``bin_count + 1`` equal-width edges from lo to hi, as np.histogram makes them."""
    import numpy as np
    scale = _scale_for(lo, hi)
    if scale == 1.0:
        return np.linspace(lo, hi, bin_count + 1)
    return np.linspace(lo * scale, hi * scale, bin_count + 1) / scale


def encode_distribution(meta: dict, payload: bytes) -> tuple[dict, None]:
    """Storage thread: the histogram, inline in the stored meta."""
    import numpy as np
    if meta.get('source') == 'hist':
        weights = np.frombuffer(payload, dtype=np.float64)
        lo, hi = meta['bin_range']
        nonfinite = int(meta.get('nonfinite', 0))
    else:
        samples = np.frombuffer(payload, dtype=np.dtype(meta['dtype']))
        weights, lo, hi, nonfinite = _histogram(samples, int(meta['bin_count']))
    return ({'bin_count': int(weights.size), 'range': [float(lo), float(hi)],
             'weights': weights.tolist(), 'nonfinite': nonfinite}, None)
