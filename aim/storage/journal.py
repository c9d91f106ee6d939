"""The append journal: memory-mapped segments that make ``track()`` crash-proof.

A point written into a segment lives in the kernel's page cache from the moment the
store instruction retires, so it survives the death of the process (SIGKILL, OOM kill,
segfault). The flusher folds journal records into the run file in batches; after a crash
the next opener replays whatever was not folded. See docs/storage.md for the layout.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Iterator

MAGIC = b'AIMJRNL1'
HEADER_SIZE = 64
# header as int64 slots: [0]=magic, [1]=capacity, [2]=committed count, [3]=folded count
H_CAPACITY, H_COMMITTED, H_FOLDED = 1, 2, 3
NO_EPOCH = -(2 ** 63)
DEFAULT_CAPACITY = 1 << 16
FIRST_CAPACITY = 1 << 12
# (name, struct code, bytes per entry)
COLUMNS = (('code', 'i', 4), ('step', 'q', 8), ('value', 'q', 8), ('epoch', 'q', 8),
           ('time', 'd', 8))
SERIES_FILE = 'series.jsonl'


def _column_offsets(capacity: int) -> dict[str, int]:
    offsets, pos = {}, HEADER_SIZE
    for name, _, size in COLUMNS:
        offsets[name] = pos
        pos += size * capacity
        pos = (pos + 63) // 64 * 64
    offsets['_end'] = pos
    return offsets


def segment_path(journal_dir: str, number: int) -> str:
    return os.path.join(journal_dir, f'{number:08d}.seg')


def list_segments(journal_dir: str) -> list[int]:
    try:
        names = os.listdir(journal_dir)
    except FileNotFoundError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith('.seg') and n[:-4].isdigit())


class Segment:
    """One memory-mapped journal file, opened for writing or for folding."""

    def __init__(self, path: str, capacity: int | None = None):
        self.path = path
        create = capacity is not None
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o644)
        try:
            if create:
                size = _column_offsets(capacity)['_end']
                try:
                    # reserve the blocks now: a full disk fails here with ENOSPC, instead of
                    # killing the process with SIGBUS on a later store into the mapping
                    os.posix_fallocate(fd, 0, size)
                except OSError:
                    os.close(fd)
                    fd = -1
                    os.unlink(path)
                    raise
            else:
                size = os.fstat(fd).st_size
            self._mm = mmap.mmap(fd, size)
        finally:
            if fd >= 0:
                os.close(fd)
        if create:
            self._mm[0:8] = MAGIC
            struct.pack_into('<q', self._mm, 8 * H_CAPACITY, capacity)
        elif self._mm[0:8] != MAGIC:
            self._mm.close()
            raise ValueError(f'{path} is not a journal segment')
        self.capacity = struct.unpack_from('<q', self._mm, 8 * H_CAPACITY)[0]
        self.offsets = _column_offsets(self.capacity)
        mv = memoryview(self._mm)
        self.header = mv[:HEADER_SIZE].cast('q')
        self.cols = {}
        for name, code, size in COLUMNS:
            start = self.offsets[name]
            self.cols[name] = mv[start:start + size * self.capacity].cast(code)
        self.dvalue = mv[self.offsets['value']:self.offsets['value'] + 8 * self.capacity].cast('d')
        self._mv = mv

    @property
    def committed(self) -> int:
        return self.header[H_COMMITTED]

    @property
    def folded(self) -> int:
        return self.header[H_FOLDED]

    def set_folded(self, n: int) -> None:
        self.header[H_FOLDED] = n

    def read(self, start: int, stop: int):
        """Copies of records [start, stop) as numpy arrays.

        Returns (code, step, ivalue, fvalue, epoch, time); fvalue is a view of ivalue.
        """
        import numpy as np
        mm, off = self._mm, self.offsets
        n = stop - start
        code = np.frombuffer(mm, np.int32, n, off['code'] + 4 * start).copy()
        step = np.frombuffer(mm, np.int64, n, off['step'] + 8 * start).copy()
        ivalue = np.frombuffer(mm, np.int64, n, off['value'] + 8 * start).copy()
        epoch = np.frombuffer(mm, np.int64, n, off['epoch'] + 8 * start).copy()
        time = np.frombuffer(mm, np.float64, n, off['time'] + 8 * start).copy()
        return code, step, ivalue, ivalue.view(np.float64), epoch, time

    def close(self) -> None:
        for col in self.cols.values():
            col.release()
        self.dvalue.release()
        self.header.release()
        self._mv.release()
        self._mm.close()


def open_series_file(journal_dir: str) -> int:
    return os.open(os.path.join(journal_dir, SERIES_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                   0o644)


def append_series_line(fd: int, series_id: int, name: str, context_json: str) -> None:
    """Announce a new series; one write() so a crash leaves whole lines only."""
    line = json.dumps({'id': series_id, 'name': name, 'context': context_json},
                      ensure_ascii=False) + '\n'
    os.write(fd, line.encode())


def read_series_lines(journal_dir: str) -> Iterator[tuple[int, str, str]]:
    try:
        with open(os.path.join(journal_dir, SERIES_FILE), encoding='utf-8') as f:
            for line in f:
                if not line.endswith('\n'):
                    break  # torn last line: its series has no points either
                rec = json.loads(line)
                yield rec['id'], rec['name'], rec['context']
    except FileNotFoundError:
        return
