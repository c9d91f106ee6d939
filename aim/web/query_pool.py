"""A bounded pool of query worker processes, with a wall-clock limit per query.

``aim up`` hands every query of a request to a worker process (``aim.web.query_worker``)
and waits for the answer in the request's thread, never in the event loop:

- at most ``size`` queries run at once; a request that finds every worker busy waits up to
  ``wait_s`` for one, then gets 503 ``ServerBusy``, so a burst of slow queries cannot queue
  without end nor take the threads that serve pages, status and the runs table;
- a query still running after ``timeout_s`` stops itself (the worker evaluates it inside
  the query language's ``CancelScope``) and the request gets 504 ``QueryTimeoutError``; a
  worker that has not answered ``KILL_GRACE_S`` later (stuck in one long C call, which
  holds the interpreter lock and sees no cancel) is killed, the request gets the same 504,
  and a fresh worker starts for the next query;
- :meth:`QueryWorkers.close` (on SIGTERM / SIGINT) kills every worker at once, so requests
  waiting on one end with 503 right away and the server exits promptly.
"""
from __future__ import annotations

import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

from aim.web.api_errors import ApiError
from aim.web.query_worker import timeout_error

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WORKERS = 2
DEFAULT_WAIT_S = 1.0
KILL_GRACE_S = 1.0  # after the limit, how long a worker may take to stop by itself
_ALARM_GRACE_S = 5  # the worker ends itself this long after a limit the server missed
_AIM_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _WorkerGone(Exception):
    pass


class QueryWorker:
    """One child process evaluating one query at a time."""

    def __init__(self, repo_root: str):
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [_AIM_ROOT, env.get('PYTHONPATH')]))
        # through the environment, not argv: a database URL may hold a password, and any
        # user of the machine can read a process' arguments
        env['__AIM_QUERY_REPO'] = repo_root
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'aim.web.query_worker'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
        self._buffer = b''

    def ask(self, request: dict, deadline: float) -> dict | None:
        """The worker's answer, or None at ``deadline`` (time.monotonic)."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(request).encode('utf-8') + b'\n')
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise _WorkerGone() from None
        fd = stdout.fileno()
        while b'\n' not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                # poll, not select: select() refuses descriptors numbered 1024 or more,
                # which a long-running server with many open files reaches
                poller = select.poll()
                poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
                ready = poller.poll(max(1, math.ceil(left * 1000)))
            except (OSError, ValueError):
                raise _WorkerGone() from None
            if not ready:
                continue
            piece = os.read(fd, 1 << 20)
            if not piece:
                raise _WorkerGone()
            self._buffer += piece
        line, self._buffer = self._buffer.split(b'\n', 1)
        return json.loads(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.kill()
            except OSError:
                pass
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass


class QueryWorkers:
    """Evaluates queries in up to ``size`` worker processes (see the module docstring)."""

    def __init__(self, repo_root: str, size: int = DEFAULT_WORKERS,
                 timeout_s: float = DEFAULT_TIMEOUT_S, wait_s: float = DEFAULT_WAIT_S):
        if size < 1:
            raise ValueError(f'the query worker count must be at least 1, got {size}')
        if not timeout_s > 0:
            raise ValueError(f'the query time limit must be positive, got {timeout_s}')
        self.repo_root = str(repo_root)
        self.size = int(size)
        self.timeout_s = float(timeout_s)
        self.wait_s = float(wait_s)
        self._slots = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self._idle: list[QueryWorker] = []
        self._busy: set[QueryWorker] = set()
        self._closed = False

    # --- what the endpoints call --------------------------------------------------------
    def run_hashes(self, query: str) -> list[str]:
        return list(self._ask({'kind': 'runs', 'query': query}))

    def metric_keys(self, query: str, names: list[str], limit: int) -> list[tuple[str, str, dict]]:
        answer = self._ask({'kind': 'metrics', 'query': query, 'names': list(names),
                            'limit': int(limit)})
        return [(h, n, c) for h, n, c in answer]

    # --- lifecycle ----------------------------------------------------------------------
    def warm(self) -> None:
        """Start workers until there are ``size`` (call from a background thread): a query
        never waits for a worker to start while another query runs, even right after a
        worker was killed."""
        while True:
            with self._lock:
                if self._closed or len(self._idle) + len(self._busy) >= self.size:
                    return
            worker = QueryWorker(self.repo_root)
            with self._lock:
                if self._closed or len(self._idle) + len(self._busy) >= self.size:
                    worker.kill()
                    return
                self._idle.append(worker)

    def _warm_in_background(self) -> None:
        threading.Thread(target=self.warm, name='aim-query-warm', daemon=True).start()

    def close(self) -> None:
        """Kill every worker; queries waiting on one answer 503 at once. Safe to call from
        a signal handler and more than once."""
        with self._lock:
            self._closed = True
            workers = self._idle + list(self._busy)
            self._idle = []
        for worker in workers:
            if worker.process.poll() is None:
                try:
                    worker.process.kill()
                except OSError:
                    pass

    # --- internals ----------------------------------------------------------------------
    def _shutting_down(self) -> ApiError:
        return ApiError(503, 'ServerShuttingDown', 'The server is shutting down, so the query '
                        'was not finished. Start `aim up` again and repeat the request.')

    def _ask(self, request: dict) -> Any:
        query = request.get('query', '')
        if self._closed:
            raise self._shutting_down()
        if not self._slots.acquire(timeout=self.wait_s):
            raise ApiError(503, 'ServerBusy', f'{self.size} queries are already running on '
                           f'this server, so this one was not started. Try again in a few '
                           f'seconds; if slow queries keep the server busy, make them cheaper '
                           f'or start `aim up` with more --query-workers.',
                           workers=self.size, query=query)
        try:
            return self._ask_worker(request, query)
        finally:
            self._slots.release()

    def _take(self) -> QueryWorker:
        with self._lock:
            if self._closed:
                raise self._shutting_down()
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    self._busy.add(worker)
                    return worker
                worker.kill()
        worker = QueryWorker(self.repo_root)
        with self._lock:
            if self._closed:
                worker.kill()
                raise self._shutting_down()
            self._busy.add(worker)
        return worker

    def _ask_worker(self, request: dict, query: str) -> Any:
        started = time.monotonic()
        deadline = started + self.timeout_s + KILL_GRACE_S
        request = dict(request, timeout_s=self.timeout_s,
                       alarm_s=math.ceil(self.timeout_s + KILL_GRACE_S) + _ALARM_GRACE_S)
        worker = self._take()
        keep = False
        try:
            reply = worker.ask(request, deadline)
            if reply is None:  # the worker did not stop by itself: killed below
                reply = {'error': timeout_error(self.timeout_s, query)}
            else:
                keep = True
        except _WorkerGone:
            if self._closed:
                raise self._shutting_down() from None
            status = worker.process.poll()
            raise ApiError(500, 'QueryWorkerError', f'The process evaluating the query ended '
                           f'without an answer (exit status {status}: out of memory, or '
                           f'killed). Try again; if it happens again, make the query cheaper '
                           f'and report it with the server log.', query=query) from None
        finally:
            with self._lock:
                self._busy.discard(worker)
                reuse = keep and not self._closed and worker.alive() and \
                    len(self._idle) + len(self._busy) < self.size
                if reuse:
                    self._idle.append(worker)
            if not reuse:
                worker.kill()
                if not keep and not self._closed:
                    self._warm_in_background()  # its replacement
        if 'error' in reply:
            err = reply['error']
            raise ApiError(int(err.get('status', 500)), str(err.get('type', 'QueryError')),
                           str(err.get('message', 'The query failed.')),
                           **(err.get('detail') or {}))
        return reply['ok']
