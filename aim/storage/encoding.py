"""JSON encodings shared by the run files and the index.

Contexts have one canonical text form so that equal dicts name the same series.
Params are JSON with non-finite floats tagged, because SQLite's JSON functions reject
bare ``NaN``/``Infinity`` and one such value would hide a whole run from queries.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from aim.errors import ParamsInputError

_NONFINITE_TAG = '$float'
_CONTROL_CHARS = re.compile('[\x00-\x1f\x7f]')
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1

# Input limits (docs/signals-and-limits.md says why these numbers).
MAX_NAME_CHARS = 1_000          # a metric name, in characters
MAX_CONTEXT_BYTES = 10_000      # a context, as canonical JSON in UTF-8
MAX_PARAMS_BYTES = 10_000_000   # all params of a run, as stored JSON in UTF-8


def check_text(text: str, where: str) -> None:
    """Refuse a str that UTF-8 cannot encode (a lone surrogate, as ``errors=
    'surrogateescape'`` decoding leaves): it could not be stored or read back."""
    if text.isascii():
        return
    try:
        text.encode('utf-8')
    except UnicodeEncodeError as e:
        raise ParamsInputError(
            f'{where} is not valid Unicode text: it holds the lone surrogate '
            f'{text[e.start]!r} at position {e.start} (text decoded with '
            f'errors="surrogateescape", or a broken UTF-16 pair). Decode the bytes with the '
            f'right encoding, or replace the character.') from None


def short_repr(value: Any) -> str:
    """repr(value), cut to its first 40 characters when long (for error messages)."""
    text = repr(value)
    return text if len(text) <= 60 else f'{text[:40]}... ({len(text):,} characters)'


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
    size = len(canonical_context(clean).encode('utf-8'))
    if size > MAX_CONTEXT_BYTES:
        raise ValueError(f'context is {size:,} bytes as JSON; a context names a series and '
                         f'may take at most {MAX_CONTEXT_BYTES:,}. Put large data in params '
                         f'(run[key] = ...) and keep the context to a few short labels.')
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
    """Convert ``value`` to plain JSON-like Python data, or raise ParamsInputError.

    Tuples become lists; numpy scalars become Python numbers; dict keys that are
    int/float/bool/None become strings (as JSON does), unless two keys of one dict
    become the same string; ints stay exact and must fit int64; strings must be valid
    Unicode. Anything else is refused with an error naming ``where``.
    """
    if _depth > 100:
        raise ParamsInputError(f'{where} is nested more than 100 levels deep')
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_PARAMS_BYTES:
            raise ParamsInputError(f'{where} is a str of {len(value):,} characters, over the '
                                   f'{MAX_PARAMS_BYTES / 1e6:g} MB that a run\'s params may '
                                   f'take. Save large data to a file and store its path.')
        check_text(value, where)
        return value
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ParamsInputError(f'{where} = {short_repr(value)} is outside the int64 range '
                                   f'(-2**63 to 2**63-1) that queries compare exactly; store '
                                   f'str(value), or float(value) if rounding is fine.')
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(k, str):
                key = k
                check_text(key, f'a key of {where}')
            elif k is None or isinstance(k, (bool, int, float)):
                key = json.dumps(k)
            else:
                raise ParamsInputError(f'{where} has a key of type {type(k).__name__} '
                                       f'({k!r:.40}); keys must be strings')
            if key in out:
                first = next(o for o in value if o is not k and
                             (o if isinstance(o, str) else json.dumps(o)) == key)
                raise ParamsInputError(f'{where} has the keys {short_repr(first)} and '
                                       f'{short_repr(k)}, which JSON stores as the same key '
                                       f'{short_repr(key)}; one value would be lost. Rename '
                                       f'one of them.')
            out[key] = to_json_value(v, f'{where}[{short_repr(key)}]', _depth + 1)
        if len(out) == 1 and _NONFINITE_TAG in out:
            raise ParamsInputError(
                f'{where} is a dict whose only key is {_NONFINITE_TAG!r}, which the stored '
                f'form reserves for NaN and infinities; rename the key or add another one')
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, f'{where}[{i}]', _depth + 1) for i, v in enumerate(value)]
    scalar = numpy_scalar(value)
    if scalar is not None:
        return to_json_value(scalar, where, _depth)
    raise ParamsInputError(f'{where} of type {type(value).__module__}.'
                           f'{type(value).__qualname__} cannot be stored; use str, int, float, '
                           f'bool, None, list or dict')


def check_param_keys(value: Any, where: str) -> None:
    """Refuse param keys with control characters (a tab, a line break, NUL): a query's
    path into the params (``run.hparams['a\tb']``) cannot name them."""
    if isinstance(value, dict):
        for key, v in value.items():
            if _CONTROL_CHARS.search(key):
                raise ParamsInputError(
                    f'a key of {where} ({short_repr(key)}) contains a control character '
                    f'(a tab, a line break, NUL, ...), which query paths cannot name; use '
                    f'printable characters in param keys')
            check_param_keys(v, f'{where}[{short_repr(key)}]')
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_param_keys(v, f'{where}[{i}]')


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
    # only the three values the writer tags; anything else is data (a repository written
    # before such dicts were refused) and reads back as it was stored
    if len(obj) == 1 and obj.get(_NONFINITE_TAG) in ('nan', 'inf', '-inf'):
        return float(obj[_NONFINITE_TAG])
    return obj


def set_param_path(tree: dict, keys: list[str], value: Any) -> None:
    """``tree[k1][k2]...[kn] = value``, making (or replacing by) dicts on the way."""
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def delete_param_path(tree: dict, keys: list[str]) -> bool:
    """``del tree[k1]...[kn]`` if it is there; whether it was."""
    node: Any = tree
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return False
    if isinstance(node, dict) and keys[-1] in node:
        del node[keys[-1]]
        return True
    return False


def dumps_params(value: Any) -> str:
    """Params (already plain JSON-like data) to stored JSON text."""
    return json.dumps(_tag_nonfinite(value), ensure_ascii=False, allow_nan=False,
                      separators=(',', ':'))


def loads_params(text: str | None) -> Any:
    if text is None:
        return None
    return json.loads(text, object_hook=_untag)
