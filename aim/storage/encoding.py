"""JSON encodings shared by the run files and the index.

Contexts have one canonical text form so that equal dicts name the same series.
Params are JSON with non-finite floats tagged, because SQLite's JSON functions reject
bare ``NaN``/``Infinity`` and one such value would hide a whole run from queries.
"""
from __future__ import annotations

import json
import math
from typing import Any

_NONFINITE_TAG = '$float'


def canonical_context(context: dict | None) -> str:
    """The canonical JSON text of a context; ``None`` and ``{}`` are the same context."""
    if not context:
        return '{}'
    return json.dumps(context, sort_keys=True, separators=(',', ':'), ensure_ascii=False,
                      allow_nan=False)


def check_context(context: Any) -> dict:
    """Validate a context given to ``track()``; returns a plain dict or raises."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise TypeError(f'context must be a dict (or None), got {type(context).__name__}: '
                        f'{context!r:.80}')
    try:
        clean = to_json_value(context, 'context')
    except (TypeError, ValueError) as e:
        raise type(e)(f'{e}; context values must be JSON-like '
                      f'(str, int, float, bool, None, list, dict)') from None
    _check_finite(clean, 'context')
    return clean


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f'{where} holds a non-finite float ({value}), which cannot name a '
                         f'series; use a string instead')
    if isinstance(value, dict):
        for v in value.values():
            _check_finite(v, where)
    elif isinstance(value, list):
        for v in value:
            _check_finite(v, where)


def to_json_value(value: Any, where: str = 'value', _depth: int = 0) -> Any:
    """Convert ``value`` to plain JSON-like Python data, or raise TypeError.

    Tuples become lists; numpy scalars become Python numbers; dict keys that are
    int/float/bool/None become strings (as JSON does); anything else is refused.
    """
    if _depth > 100:
        raise ValueError(f'{where} is nested more than 100 levels deep')
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str):
                key = k
            elif k is None or isinstance(k, (bool, int, float)):
                key = json.dumps(k)
            else:
                raise TypeError(f'{where} has a key of type {type(k).__name__} ({k!r:.40}); '
                                f'keys must be strings')
            out[key] = to_json_value(v, f'{where}[{key!r}]', _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, f'{where}[{i}]', _depth + 1) for i, v in enumerate(value)]
    scalar = numpy_scalar(value)
    if scalar is not None:
        return scalar
    raise TypeError(f'{where} of type {type(value).__module__}.{type(value).__qualname__} '
                    f'cannot be stored; use str, int, float, bool, None, list or dict')


def numpy_scalar(value: Any) -> int | float | bool | None:
    """A Python number for a numpy/torch/jax scalar or 1-element array, else None.

    Recognised by class module and duck typing so that no framework is imported.
    """
    module = type(value).__module__.split('.', 1)[0]
    if module not in ('numpy', 'torch', 'jax', 'jaxlib', 'tensorflow', 'cupy'):
        return None
    try:
        size = value.numel() if module == 'torch' else getattr(value, 'size', 1)
        if size != 1:
            return None
        item = value.item()
    except Exception:
        return None
    if isinstance(item, (bool, int, float)):
        return item
    return None


def _tag_nonfinite(value: Any) -> Any:
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {_NONFINITE_TAG: 'nan' if math.isnan(value) else ('inf' if value > 0 else '-inf')}
    if isinstance(value, dict):
        return {k: _tag_nonfinite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tag_nonfinite(v) for v in value]
    return value


def _untag(obj: dict) -> Any:
    if len(obj) == 1 and _NONFINITE_TAG in obj:
        return float(obj[_NONFINITE_TAG])
    return obj


def dumps_params(value: Any) -> str:
    """Params (already plain JSON-like data) to stored JSON text."""
    return json.dumps(_tag_nonfinite(value), ensure_ascii=False, allow_nan=False,
                      separators=(',', ':'))


def loads_params(text: str | None) -> Any:
    if text is None:
        return None
    return json.loads(text, object_hook=_untag)
