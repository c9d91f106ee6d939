"""JSON responses that survive NaN and infinity.

Metric values and params may be non-finite; strict JSON has no spelling for them, so they
are sent as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (what Aim's API does).
The fast path is a plain strict dump; only a payload that holds a non-finite float pays for
the rewrite.
"""
from __future__ import annotations

import json
import math
from typing import Any

from fastapi.responses import JSONResponse


def replace_nonfinite(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return 'NaN'
        if math.isinf(value):
            return 'Infinity' if value > 0 else '-Infinity'
        return value
    if isinstance(value, dict):
        return {k: replace_nonfinite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [replace_nonfinite(v) for v in value]
    return value


def dumps(content: Any) -> bytes:
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(',', ':'))
    except ValueError:
        text = json.dumps(replace_nonfinite(content), ensure_ascii=False, allow_nan=False,
                          separators=(',', ':'))
    return text.encode('utf-8')


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)
