"""Sequences of rich objects: ``Images``, ``Texts``, ``Distributions``, ``Audios``,
``Figures`` (Aim 3's names), one per run, name and context.

``run.get_image_sequence('samples', {'subset': 'val'})`` gives one; ``repo.query_images(q)``
gives those a query selects. Values are read from the object chunks in step order; an
object's blob (pixels, audio bytes, figure JSON) is loaded only when it is used.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from aim.storage import objects as store_objects
from aim.storage.context import Context

if TYPE_CHECKING:
    from aim.sdk.run import Run


class _Values:
    """Aim's ``ArrayView`` over a sequence's values, keyed by step."""

    def __init__(self, seq: ObjectSequence):
        self._seq = seq

    def _points(self):
        return self._seq._load()

    def values_list(self) -> list:
        return [v for _, _, _, v in self._points()]

    values = tolist = values_list

    def indices_list(self) -> list[int]:
        return [s for s, _, _, _ in self._points()]

    keys = indices = indices_list

    def sparse_list(self) -> tuple[list, list]:
        pts = self._points()
        return [p[0] for p in pts], [p[3] for p in pts]

    def items(self) -> list[tuple[int, Any]]:
        return [(p[0], p[3]) for p in self._points()]

    def first(self):
        pts = self._points()
        return (pts[0][0], pts[0][3]) if pts else None

    def last(self):
        pts = self._points()
        return (pts[-1][0], pts[-1][3]) if pts else None

    def first_value(self):
        first = self.first()
        return first[1] if first else None

    def last_value(self):
        last = self.last()
        return last[1] if last else None

    def first_idx(self):
        first = self.first()
        return first[0] if first else None

    def last_idx(self):
        last = self.last()
        return last[0] if last else None

    def __getitem__(self, step: int):
        if isinstance(step, slice):
            raise TypeError('values[...] takes one step; for a range of steps use '
                            'seq.data.range(start, stop)')
        for s, _, _, v in self._points():
            if s == step:
                return v
        raise KeyError(f'no value at step {step}')

    def __len__(self) -> int:
        return len(self._points())

    def __iter__(self):
        return iter(self.values_list())


class _Data:
    """Aim 3.x's ``seq.data``: (steps, [values, epochs, timestamps])."""

    def __init__(self, seq: ObjectSequence):
        self._seq = seq

    @staticmethod
    def _columns(pts):
        return [p[0] for p in pts], [[p[3] for p in pts], [p[1] for p in pts],
                                     [p[2] for p in pts]]

    def items_list(self):
        return self._columns(self._seq._load())

    def values_list(self) -> list:
        return [p[3] for p in self._seq._load()]

    def indices_list(self) -> list[int]:
        return [p[0] for p in self._seq._load()]

    def numpy(self):
        import numpy as np
        steps, cols = self.items_list()
        return np.asarray(steps, dtype=np.int64), cols

    def range(self, start: int, stop: int):
        """The points with ``start <= step < stop``."""
        return self._columns(self._seq._load(start, stop - 1))

    def sample(self, k: int):
        """Up to k points spread evenly over the sequence, always including the last."""
        pts = self._seq._load()
        if len(pts) > k > 0:
            idx = sorted({round(i * (len(pts) - 1) / (k - 1)) for i in range(k)}) if k > 1 \
                else [len(pts) - 1]
            pts = [pts[i] for i in idx]
        return self._columns(pts)


class ObjectSequence:
    """The objects of one kind tracked under one name and context of a run."""
    KIND: ClassVar[str] = ''

    def __init__(self, name: str, context: dict | Context | None, run: Run,
                 row: dict | None = None):
        self.name = name
        self.context = context if isinstance(context, Context) else Context(context or {})
        self._run = run
        self._row = row
        self._cache: list | None = None

    # Aim's class-level description --------------------------------------------------------
    @classmethod
    def sequence_name(cls) -> str:
        return store_objects.SEQUENCE_NAMES[cls.KIND]

    @classmethod
    def allowed_dtypes(cls) -> tuple[str, ...]:
        name = store_objects.AIM_NAMES[cls.KIND]
        return (name, f'list({name})')

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def run(self) -> Run:
        return self._run

    @property
    def context_json(self) -> str:
        from aim.storage.encoding import canonical_context
        return canonical_context(self.context.to_dict())

    def _summary_row(self) -> dict:
        if self._row is None:
            row = self._run._object_series_row(self.name, self.context_json)
            self._row = row or {'count': 0, 'first_step': None, 'last_step': None,
                                'last_time': None, 'id': None}
        return self._row

    @property
    def count(self) -> int:
        return int(self._summary_row().get('count') or 0)

    def first_step(self):
        return self._summary_row().get('first_step')

    def last_step(self):
        return self._summary_row().get('last_step')

    def __len__(self) -> int:
        return len(self._load())

    def __bool__(self) -> bool:
        return self.count > 0

    def __repr__(self) -> str:
        return (f'<{type(self).__name__} {self.name!r} {self.context.to_dict()} of run '
                f'{self._run.hash}>')

    def __eq__(self, other) -> bool:
        return isinstance(other, ObjectSequence) and type(other) is type(self) and \
            (self._run.hash, self.name, self.context_json) == \
            (other._run.hash, other.name, other.context_json)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._run.hash, self.name, self.context_json))

    # reading ----------------------------------------------------------------------------------
    def _load(self, first_step: int | None = None, last_step: int | None = None) -> list:
        """[(step, epoch, time, value)]: value an object, or a list when tracked as one."""
        whole = first_step is None and last_step is None
        if whole and self._cache is not None:
            return self._cache
        if self._run._live is not None:
            self._run._live.flush()
            self._row = None
        row = self._summary_row()
        if row.get('id') is None:
            return []
        store = self._run.repo._store
        points = store.object_points(row['id'], first_step, last_step)
        out = [(step, epoch, t, _objects_of(self.KIND, value, store))
               for step, epoch, t, value in points]
        if whole and self._run._live is None:
            self._cache = out
        return out

    def preload(self) -> None:
        self._cache = None
        self._load()

    def reload(self) -> None:
        self._cache = None
        self._row = None

    @property
    def values(self) -> _Values:
        return _Values(self)

    @property
    def data(self) -> _Data:
        return _Data(self)

    @property
    def steps(self) -> list[int]:
        return [p[0] for p in self._load()]

    @property
    def epochs(self) -> list:
        return [p[1] for p in self._load()]

    @property
    def timestamps(self) -> list[float]:
        return [p[2] for p in self._load()]

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return iter(self.values.items())


def _objects_of(kind: str, value, store):
    from aim.sdk.objects import from_stored

    def make(meta: dict):
        digest = meta.get('blob')
        loader = None
        if isinstance(digest, str):
            def loader(d=digest):
                return store.blobs.get(d)
        return from_stored(kind, meta, loader)
    if isinstance(value, list):
        return [make(m) for m in value]
    return make(value)


class Images(ObjectSequence):
    KIND = 'image'


class Texts(ObjectSequence):
    KIND = 'text'


class Distributions(ObjectSequence):
    KIND = 'distribution'

    @classmethod
    def allowed_dtypes(cls) -> tuple[str, ...]:
        return ('aim.distribution',)


class Audios(ObjectSequence):
    KIND = 'audio'


class Figures(ObjectSequence):
    KIND = 'figure'

    @classmethod
    def allowed_dtypes(cls) -> tuple[str, ...]:
        return ('aim.figure',)


SEQUENCE_CLASSES: dict[str, type[ObjectSequence]] = {
    c.KIND: c for c in (Images, Texts, Distributions, Audios, Figures)}


def kind_of(sequence_type) -> str | None:
    """The object kind a sequence type names: a class, 'images', 'aim.image',
    'list(aim.image)' or 'image'; None for metrics and unknown names."""
    if isinstance(sequence_type, type) and issubclass(sequence_type, ObjectSequence):
        return sequence_type.KIND
    if not isinstance(sequence_type, str):
        return None
    name = sequence_type
    if name.startswith('list(') and name.endswith(')'):
        name = name[5:-1]
    if name.startswith('aim.'):
        name = name[4:]
    if name in store_objects.KIND_OF_SEQUENCE:
        return store_objects.KIND_OF_SEQUENCE[name]
    return name if name in store_objects.KINDS else None


def sequence_from_row(run: Run, row: dict) -> ObjectSequence:
    cls = SEQUENCE_CLASSES[row['kind']]
    return cls(row['name'], json.loads(row['context']), run, row)
