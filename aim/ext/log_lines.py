"""Turning a terminal byte stream into the lines a person saw.

A progress bar (tqdm and friends) redraws its line by writing ``\\r`` and the new state
without a newline; on screen only the last state remains, so only the last state becomes
a line here. ANSI escape sequences (colours, cursor moves) are dropped so that the stored
text is plain and searchable.
"""
from __future__ import annotations

import codecs
import re

_ANSI_ESCAPE = re.compile(
    r'\x1b\[[0-?]*[ -/]*[@-~]'              # CSI: colours, cursor moves, erase line
    r'|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)'    # OSC: window titles, hyperlinks
    r'|\x1b[@-Z\\-_]'                        # other two-byte escapes
)


def strip_ansi(text: str) -> str:
    return _ANSI_ESCAPE.sub('', text)


class LineAssembler:
    """Feeds on bytes, returns finished lines; not thread-safe (one per stream)."""

    def __init__(self, encoding: str = 'utf-8'):
        self._decoder = codecs.getincrementaldecoder(encoding)(errors='replace')
        self._parts: list[str] = []
        # A '\r' was seen: the next character decides whether it ended the line
        # ('\r\n') or started redrawing it (anything else).
        self._carriage_return = False

    def feed(self, data: bytes) -> list[str]:
        return self.feed_text(self._decoder.decode(data))

    def feed_text(self, text: str) -> list[str]:
        lines = []
        start = 0
        for match in re.finditer(r'[\r\n]', text):
            self._add(text[start:match.start()])
            start = match.end()
            if match.group() == '\n':
                lines.append(self._take_line())
            else:
                self._carriage_return = True
        self._add(text[start:])
        return lines

    def finish(self) -> list[str]:
        """The last, unterminated line, if it holds anything but whitespace."""
        tail = self._decoder.decode(b'', final=True)
        self._add(tail)
        line = self._take_line()
        return [line] if line.strip() else []

    def _add(self, segment: str) -> None:
        if not segment:
            return
        if self._carriage_return:
            self._parts.clear()
            self._carriage_return = False
        self._parts.append(segment)

    def _take_line(self) -> str:
        line = strip_ansi(''.join(self._parts))
        self._parts.clear()
        self._carriage_return = False
        return line
