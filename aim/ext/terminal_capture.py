"""Tee the process's stdout and stderr into a run, line by line, with timestamps.

Capture works at the file-descriptor level: fds 1 and 2 are pointed at pipes (at
pseudo-terminals where they were terminals, so that ``isatty()`` stays true), and a
daemon thread per stream copies every byte to the original destination (so the terminal
still shows everything, immediately) and hands finished lines to the subscribed sinks.
Unlike replacing ``sys.stdout``, this also catches output of C extensions and of child
processes started by the training script (they inherit fds 1 and 2). See
docs/system-tracking.md.

The redirection is process-wide and shared: every ``TerminalLogCapture`` that is started
subscribes to it, the first one sets it up and the last one to stop takes it down.
Where ``sys.stdout`` is not backed by a file descriptor (Jupyter), Python-level writes are
teed by wrapping ``sys.stdout`` / ``sys.stderr`` instead.
"""
from __future__ import annotations

import atexit
import fcntl
import os
import select
import sys
import termios
import threading
import time
from collections.abc import Callable

from aim.ext.log_lines import LineAssembler
from aim.ext.warn_once import warn_once

LogSink = Callable[[list[tuple[float, str]]], None]


class TerminalLogCapture:
    """Delivers ``[(timestamp, line), ...]`` batches of terminal output to ``sink``.

    The sink is called from a capture thread; it must be quick and must not raise (if
    it does, capture for this sink warns once and goes on). Lines are plain text: ``\\r``
    redraws are collapsed to their last state and ANSI escapes removed.
    """

    def __init__(self, sink: LogSink):
        self._sink = sink
        self._active = False
        self._sink_failed = False

    @property
    def active(self) -> bool:
        return self._active

    def start(self) -> None:
        if self._active:
            return
        try:
            _hub.subscribe(self)
        except Exception as exc:
            warn_once('terminal-capture-start',
                      f'Terminal output is not captured into the run: {exc!r}. Training '
                      f'goes on and the terminal shows everything as usual.')
            return
        self._active = True

    def stop(self) -> None:
        """Stop capturing; output written before this call reaches the sink first."""
        if not self._active:
            return
        self._active = False
        try:
            _hub.unsubscribe(self)
        except Exception as exc:
            warn_once('terminal-capture-stop', f'Stopping terminal capture failed: {exc!r}.')

    def _deliver(self, lines: list[tuple[float, str]]) -> None:
        if self._sink_failed:
            return
        try:
            self._sink(lines)
        except Exception as exc:
            self._sink_failed = True
            warn_once('terminal-capture-sink',
                      f'Terminal output could not be stored in the run ({exc!r}); capture '
                      f'into this run stops. Training goes on.')


class _TeeHub:
    """The process-wide redirection of fds 1 and 2, shared by every capture."""

    def __init__(self):
        self._lock = threading.RLock()
        self._dispatch_lock = threading.Lock()
        self._subscribers: list[TerminalLogCapture] = []
        self._tees: list[_FdTee | _SysStreamTee] = []
        self._atexit_registered = False

    def subscribe(self, capture: TerminalLogCapture) -> None:
        with self._lock:
            if not self._subscribers:
                self._start_tees()
            else:  # output written before this start belongs to the earlier captures
                _flush_python_streams()
                for tee in self._tees:
                    tee.drain()
            self._subscribers.append(capture)

    def unsubscribe(self, capture: TerminalLogCapture) -> None:
        with self._lock:
            _flush_python_streams()
            last = self._subscribers == [capture]
            if last:
                self._stop_tees()  # waits until everything written so far is delivered
            else:
                for tee in self._tees:
                    tee.drain()
            if capture in self._subscribers:
                self._subscribers.remove(capture)

    def dispatch(self, lines: list[tuple[float, str]]) -> None:
        with self._dispatch_lock:
            for capture in list(self._subscribers):
                capture._deliver(lines)

    def after_fork_in_child(self) -> None:
        # The child's fds still point at the parent's pipes, whose reader threads live in
        # the parent and keep teeing the child's output. The child's capture objects
        # belong to the parent's runs, so the child starts with no subscribers.
        self._lock = threading.RLock()
        self._dispatch_lock = threading.Lock()
        self._subscribers = []
        self._tees = []

    def stop_all(self) -> None:
        """At interpreter exit: put the fds back while the reader threads still run."""
        with self._lock:
            if self._tees:
                _flush_python_streams()
                self._stop_tees()
            self._subscribers.clear()

    def _start_tees(self) -> None:
        _flush_python_streams()
        for fd, stream_name in ((1, 'stdout'), (2, 'stderr')):
            tee = _open_tee(fd, stream_name, self.dispatch)
            if tee is not None:
                self._tees.append(tee)
        if not self._tees:
            raise OSError('neither stdout nor stderr can be redirected')
        if not self._atexit_registered:
            atexit.register(self.stop_all)
            self._atexit_registered = True

    def _stop_tees(self) -> None:
        tees, self._tees = self._tees, []
        for tee in tees:
            tee.stop()


def _open_tee(fd: int, stream_name: str, dispatch) -> _FdTee | _SysStreamTee | None:
    stream = getattr(sys, stream_name)
    if stream is not None and not _has_fileno(stream):
        return _SysStreamTee(stream_name, dispatch)
    try:
        tee = _FdTee(fd, stream_name, dispatch)
        tee.start()
        return tee
    except OSError as exc:  # fd closed (daemons), or out of file descriptors
        warn_once(f'terminal-capture-{stream_name}',
                  f'{stream_name} is not captured into the run: {exc!r}.')
        return None


class _FdTee:
    """Points ``fd`` at a pipe; a thread copies the pipe to the original fd and parses lines.

    When the original is a terminal, the "pipe" is a pseudo-terminal with the same size and
    settings, so that ``isatty()`` stays true: libraries keep their colours and progress
    bars, and child Pythons keep line-buffering their output.
    """

    # How long stop() and drain() wait for output already written to be read; only a
    # child process that keeps writing could make them wait that long.
    DRAIN_TIMEOUT_S = 1.0
    STOP_JOIN_S = 0.2

    def __init__(self, fd: int, stream_name: str, dispatch):
        self.fd = fd
        self.stream_name = stream_name
        self._dispatch = dispatch
        self._assembler = LineAssembler()
        # Held while a chunk is read and processed, so that "pipe empty" seen under it
        # means every byte written so far has been teed and dispatched.
        self._state_lock = threading.Lock()
        self._original_fd = -1
        self._read_fd = -1
        self._pipe_id: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._original_fd = os.dup(self.fd)
        try:
            read_fd, write_fd = _open_channel(self._original_fd)
        except OSError:
            os.close(self._original_fd)
            raise
        try:
            os.dup2(write_fd, self.fd)
            stat = os.fstat(write_fd)
            self._pipe_id = (stat.st_dev, stat.st_ino)
        except OSError:
            os.close(read_fd)
            os.close(self._original_fd)
            raise
        finally:
            os.close(write_fd)
        self._read_fd = read_fd
        self._thread = threading.Thread(target=self._pump, daemon=True,
                                        name=f'aim-terminal-capture-{self.stream_name}')
        self._thread.start()

    def stop(self) -> None:
        # Put the original back only if the fd is still our pipe: a test runner or
        # another tool may have redirected it since, and its redirection wins.
        try:
            stat = os.fstat(self.fd)
            if (stat.st_dev, stat.st_ino) == self._pipe_id:
                os.dup2(self._original_fd, self.fd)
        except OSError:
            pass
        self.drain()
        with self._state_lock:
            self._dispatch_tail()
        # With our write end gone the reader sees end-of-file at once, unless a child
        # process still holds the pipe: then the thread keeps teeing its output to the
        # terminal in the background until the child exits.
        if self._thread is not None:
            self._thread.join(self.STOP_JOIN_S)

    def drain(self) -> None:
        """Wait until everything written so far has been read and dispatched."""
        deadline = time.monotonic() + self.DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and self._thread is not None \
                and self._thread.is_alive():
            with self._state_lock:
                if _bytes_waiting(self._read_fd) == 0:
                    return
            time.sleep(0.002)

    def _pump(self) -> None:
        terminal_ok = True
        poller = select.poll()
        poller.register(self._read_fd, select.POLLIN | select.POLLHUP)
        try:
            while True:
                try:
                    poller.poll()  # wait outside the lock: drain() may look meanwhile
                except InterruptedError:
                    continue
                with self._state_lock:
                    try:
                        data = os.read(self._read_fd, 65536)
                    except InterruptedError:
                        continue
                    except OSError:
                        data = b''
                    if not data:
                        self._dispatch_tail()
                        return
                    if terminal_ok:
                        terminal_ok = _write_all(self._original_fd, data)
                    lines = self._assembler.feed(data)
                    if lines:
                        now = time.time()
                        self._dispatch([(now, line) for line in lines])
        finally:
            for fd in (self._read_fd, self._original_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _dispatch_tail(self) -> None:
        """Hand over the unfinished last line (called with the state lock held)."""
        rest = self._assembler.finish()
        if rest:
            self._dispatch([(time.time(), line) for line in rest])


class _SysStreamTee:
    """For ``sys.stdout``/``sys.stderr`` objects without a file descriptor (Jupyter)."""

    def __init__(self, stream_name: str, dispatch):
        self.stream_name = stream_name
        self._original = getattr(sys, stream_name)
        self._wrapper = _TeeTextStream(self._original, dispatch)
        setattr(sys, stream_name, self._wrapper)

    def stop(self) -> None:
        if getattr(sys, self.stream_name) is self._wrapper:
            setattr(sys, self.stream_name, self._original)
        self._wrapper.finish()

    def drain(self) -> None:
        pass


class _TeeTextStream:
    """A text stream that writes through to another one and parses what passes."""

    def __init__(self, target, dispatch):
        self._target = target
        self._dispatch = dispatch
        self._assembler = LineAssembler()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self._target.write(text)
        try:
            with self._lock:
                lines = self._assembler.feed_text(text)
            if lines:
                now = time.time()
                self._dispatch([(now, line) for line in lines])
        except Exception:
            pass  # the sink reports its own failures; the write itself succeeded
        return written

    def finish(self) -> None:
        with self._lock:
            rest = self._assembler.finish()
        if rest:
            self._dispatch([(time.time(), line) for line in rest])

    def __getattr__(self, name):  # flush, isatty, encoding, ... of the real stream
        return getattr(self._target, name)


def _open_channel(original_fd: int) -> tuple[int, int]:
    """(read end, write end): a pseudo-terminal mirroring ``original_fd`` if that is a
    terminal, else a pipe."""
    if not os.isatty(original_fd):
        return os.pipe()
    try:
        master, slave = os.openpty()
    except OSError:  # no pseudo-terminals left (or none in this container)
        return os.pipe()
    try:
        attrs = termios.tcgetattr(original_fd)
        attrs[1] &= ~termios.OPOST  # bytes pass unchanged: no '\n' -> '\r\n' on the way
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        size = fcntl.ioctl(original_fd, termios.TIOCGWINSZ, b'\0' * 8)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
    except (OSError, termios.error):
        pass  # a plain pseudo-terminal still keeps isatty() true
    return master, slave


def _has_fileno(stream) -> bool:
    try:
        stream.fileno()
        return True
    except Exception:
        return False


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _write_all(fd: int, data: bytes) -> bool:
    """Write everything to the terminal; ``False`` once it is gone (closed, EPIPE)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue
        except OSError:
            return False
    return True


def _bytes_waiting(fd: int) -> int:
    try:
        buf = fcntl.ioctl(fd, termios.FIONREAD, b'\0\0\0\0')
        return int.from_bytes(buf, sys.byteorder)
    except OSError:
        return 0


_hub = _TeeHub()
if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_hub.after_fork_in_child)
