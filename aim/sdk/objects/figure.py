"""``Figure``: a chart tracked with ``run.track(Figure(...), name=...)``.

Stored as the figure's plotly JSON, which the UI draws with plotly.js. A matplotlib
figure becomes a plotly figure whose only content is the figure rendered as a PNG
(``layout.images`` with a data URI), on axes sized in pixels: every matplotlib artist
looks as matplotlib draws it, without a trace-by-trace translation that could lose parts
of it.
"""
from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from typing import Any

from aim.errors import InputError, TrackInputError
from aim.sdk.objects.base import AimObject, is_matplotlib_figure, load_blob, require, type_name

_ACCEPTED = ('a plotly figure (or any object with to_plotly_json() or to_json()), a '
             "plotly figure dict (with 'data' and/or 'layout'), or a matplotlib figure")
_PLOTLY_KEYS = {'data', 'layout', 'frames'}


def _json_default(value: Any) -> Any:
    """JSON for the numpy / datetime values a plotly dict may hold."""
    if getattr(getattr(value, 'dtype', None), 'kind', '') == 'M':  # numpy datetimes
        import numpy as np
        return np.datetime_as_string(value).tolist()
    if hasattr(value, 'tolist'):  # numpy arrays and scalars, torch tensors, pandas
        return value.tolist()
    if hasattr(value, 'isoformat'):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode('latin-1')
    raise TypeError(f'{type_name(value)} is not JSON-able')


def _typed_array(value: dict) -> list | None:
    """A plotly typed array ({'dtype': 'f8', 'bdata': base64, 'shape': '2, 3'}: how plotly
    6 writes numpy arrays) as a plain (nested) list, or None when it is not one."""
    if not ('bdata' in value and 'dtype' in value and set(value) <= {'bdata', 'dtype', 'shape'}
            and isinstance(value['bdata'], str) and value['dtype'] in _TYPED_ARRAY_DTYPES):
        return None
    import base64

    import numpy as np
    try:
        arr = np.frombuffer(base64.b64decode(value['bdata']), dtype='<' + value['dtype'])
        if value.get('shape'):
            arr = arr.reshape([int(n) for n in str(value['shape']).split(',') if n.strip()])
    except ValueError:
        return None
    return arr.tolist()


_TYPED_ARRAY_DTYPES = {'i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'f4', 'f8'}


def _plain(value: Any) -> Any:
    """The JSON tree with typed arrays as lists and NaN / ±inf as null: what any reader
    (plotly.js of any version, Python) reads alike."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        if 'bdata' in value:
            plain = _typed_array(value)
            if plain is not None:
                return _plain(plain)
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _check_plotly_dict(data: Any, source: str) -> dict:
    if not isinstance(data, dict) or not data or not set(data) <= _PLOTLY_KEYS \
            or not ({'data', 'layout'} & set(data)):
        keys = sorted(data) if isinstance(data, dict) else type_name(data)
        raise TrackInputError(f'Figure: {source} is not a plotly figure: expected a dict with '
                              f"'data' and/or 'layout' (and 'frames'), got {keys}")
    if 'data' in data and not isinstance(data['data'], (list, tuple)):
        raise TrackInputError(f"Figure: {source} has 'data' of type "
                              f"{type_name(data['data'])}; plotly expects a list of traces")
    return data


def _dumps(data: dict, source: str) -> str:
    try:
        return json.dumps(data, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TrackInputError(f'Figure: {source} cannot be written as JSON: {exc}') from None


def matplotlib_to_plotly(fig: Any) -> dict:
    """A plotly figure dict showing the matplotlib figure rendered as a PNG."""
    import base64
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    png = buf.getvalue()
    width, height = int.from_bytes(png[16:20], 'big'), int.from_bytes(png[20:24], 'big')
    uri = 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')
    axis = {'visible': False, 'showgrid': False, 'zeroline': False, 'fixedrange': False}
    return {
        'data': [],
        'layout': {
            'width': width, 'height': height,
            'margin': {'l': 0, 'r': 0, 't': 0, 'b': 0},
            'xaxis': {**axis, 'range': [0, width]},
            'yaxis': {**axis, 'range': [0, height], 'scaleanchor': 'x'},
            'images': [{'source': uri, 'xref': 'x', 'yref': 'y', 'x': 0, 'y': height,
                        'sizex': width, 'sizey': height, 'sizing': 'stretch',
                        'layer': 'below'}],
            'plot_bgcolor': 'white',
            'meta': {'aim_source': 'matplotlib'},
        },
    }


class Figure(AimObject):
    """A chart: ``Figure(obj)`` with a plotly figure, a plotly figure dict or a
    matplotlib figure."""

    __slots__ = ('_json', '_data', '_source', '_load_blob')

    AIM_NAME = 'aim.figure'
    KIND = 'figure'

    def __init__(self, obj: Any):
        self._data: dict | None = None
        self._load_blob: Callable[[], bytes] | None = None
        if isinstance(obj, dict):
            self._source = 'plotly'
            self._json: str | None = _dumps(_check_plotly_dict(obj, 'the dict'), 'the dict')
        elif is_matplotlib_figure(obj):
            self._source = 'matplotlib'
            self._json = json.dumps(matplotlib_to_plotly(obj))
        elif callable(getattr(obj, 'to_plotly_json', None)):
            self._source = 'plotly'
            data = _check_plotly_dict(obj.to_plotly_json(), f'{type_name(obj)}.to_plotly_json()')
            try:
                self._json = _dumps(data, type_name(obj))
            except TrackInputError:
                if not callable(getattr(obj, 'to_json', None)):
                    raise
                self._json = obj.to_json()  # plotly's encoder knows more types
        elif callable(getattr(obj, 'to_json', None)):
            self._source = 'plotly'
            text = obj.to_json()
            try:
                data = json.loads(text)
            except (TypeError, ValueError):
                raise TrackInputError(f'Figure: {type_name(obj)}.to_json() did not return '
                                      f'JSON') from None
            _check_plotly_dict(data, f'{type_name(obj)}.to_json()')
            self._json = text
        else:
            raise TrackInputError(f'Figure: cannot make a figure from {type_name(obj)}; '
                                  f'pass {_ACCEPTED}')

    @classmethod
    def _from_stored(cls, meta: dict, blob: Callable[[], bytes] | None) -> Figure:
        self = cls.__new__(cls)
        self._json = None
        self._data = None
        self._source = meta.get('source', 'plotly')
        self._load_blob = blob
        return self

    def _text(self) -> str:
        if self._json is None:
            if self._load_blob is None:
                raise InputError('Figure: this stored figure has no data')
            self._json = load_blob(self._load_blob, 'Figure').decode('utf-8')
        return self._json

    @property
    def data(self) -> dict:
        """The plotly figure as a JSON dict ('data', 'layout', ...)."""
        if self._data is None:
            self._data = _plain(json.loads(self._text()))
        return self._data

    @property
    def source(self) -> str:
        """'plotly' or 'matplotlib': what the figure was made from."""
        return self._source

    def to_plotly_figure(self) -> Any:
        go = require('plotly.graph_objects', 'plotly', 'Figure.to_plotly_figure()')
        return go.Figure(self.data)

    def json(self) -> dict:
        return self.data

    def _content(self) -> tuple:
        return (self.data,)

    def __repr__(self) -> str:  # cheap: no parsing, no blob loading
        size = f', {len(self._json)} characters of JSON' if self._json is not None else ''
        return f'<Figure from {self._source}{size}>'

    def _capture(self) -> tuple[dict, bytes]:
        return {'source': self._source}, self._text().encode('utf-8')


def encode_figure(meta: dict, payload: bytes) -> tuple[dict, bytes]:
    """Storage thread: the figure as canonical JSON (sorted keys, no spaces, typed arrays
    as lists, NaN as null), so that equal figures give equal bytes."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise TrackInputError(f'Figure: the figure JSON cannot be read: {exc}') from None
    text = json.dumps(_plain(data), sort_keys=True, separators=(',', ':'), allow_nan=False)
    return {'source': meta.get('source', 'plotly')}, text.encode('utf-8')
