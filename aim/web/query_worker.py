"""A child process of ``aim up`` that evaluates the queries of web requests.

A query can take longer than anyone wants to wait, and some of its steps (a regular
expression, a big string operation) run inside one C call that holds the interpreter lock,
so no thread of the same process, not even the event loop or a signal handler, runs until
it ends. ``aim up`` therefore evaluates queries here, in a separate process it can kill at
the request's time limit (``aim.web.query_pool``), and the server itself never evaluates a
query.

Protocol: one JSON object a line on stdin, one JSON answer a line on the original stdout::

    {"kind": "runs", "query": "...", "timeout_s": 10, "alarm_s": 16}
    {"kind": "metrics", "query": "...", "names": ["loss"], "limit": 1001, ...}
    -> {"ok": [...]}   or   {"error": {"status", "type", "message", "detail"}}

``runs`` answers the matching run hashes, ``metrics`` the first ``limit`` matching
``[run_hash, name, context]``. The query stops itself at ``timeout_s`` (the query
language's ``CancelScope``, checked between its steps) and answers 504
``QueryTimeoutError``; the server kills a worker that has not answered shortly after, and
``alarm_s`` ends the process (SIGALRM, default action, which the kernel carries out even in
the middle of a C call) if the server failed to.

Run as ``python -m aim.web.query_worker REPO_ROOT``.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any


def _die_with_parent() -> None:
    """End this process soon after the server that started it dies, even in the middle
    of a query (an idle worker sees its stdin close). Not prctl(PR_SET_PDEATHSIG): that
    fires when the *thread* that started the worker ends, and request threads come and go.
    A query stuck in one C call holds the interpreter lock, so this thread waits for it;
    the alarm ends such a query."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)
    threading.Thread(target=watch, name='aim-query-parent-watch', daemon=True).start()


def evaluate(repo, request: dict) -> Any:
    from aim.web.query_bridge import matching_metrics, matching_run_hashes
    kind = request.get('kind')
    query = str(request.get('query') or '')
    if kind == 'runs':
        return matching_run_hashes(repo, query)
    if kind == 'metrics':
        names = set(request.get('names') or ())
        limit = int(request.get('limit') or 1)
        keys = []
        for metric in matching_metrics(repo, query):
            if names and metric.name not in names:
                continue
            keys.append([metric.run.hash, metric.name, dict(metric.context or {})])
            if len(keys) >= limit:
                break
        return keys
    raise ValueError(f'unknown request kind {kind!r}')


def timeout_error(limit_s: float, query: str) -> dict:
    """The error of a query stopped at the server's time limit (here or by the server)."""
    return {'status': 504, 'type': 'QueryTimeoutError', 'detail': {'query': query,
                                                                   'limit_s': limit_s},
            'message': f"The query ran longer than this server's limit of {limit_s:g} s and "
                       f'was stopped. Make it cheaper (start with simple comparisons such as '
                       f'run.experiment == "name", which the index answers), or start '
                       f'`aim up` with a longer --query-timeout.'}


def answer(repo, request: dict) -> dict:
    from aim.errors import AimError, QueryError
    from aim.ql.budget import CancelScope
    from aim.web.error_fields import error_fields
    timeout_s = request.get('timeout_s')
    scope = CancelScope(wall_s=timeout_s)
    try:
        with scope:
            return {'ok': evaluate(repo, request)}
    except AimError as e:
        if isinstance(e, QueryError) and timeout_s is not None and scope.deadline is not None \
                and time.monotonic() >= scope.deadline:
            return {'error': timeout_error(float(timeout_s), str(request.get('query') or ''))}
        return {'error': error_fields(e)}
    except Exception as e:  # reported to the client; the worker lives on
        return {'error': {'status': 500, 'type': 'InternalError', 'detail': {},
                          'message': f'The query failed: {type(e).__name__}: {e}. This is a '
                                     f'bug; please report it with the query.'}}


def main(argv: list[str]) -> int:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which ends us
    # Answers go to a private copy of stdout; anything else printed goes to stderr.
    answers = os.fdopen(os.dup(1), 'w', encoding='utf-8')
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from aim.sdk.repo import Repo
    repo = Repo(argv[1] if len(argv) > 1 else os.environ.pop('__AIM_QUERY_REPO'),
                read_only=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        signal.alarm(max(1, int(request.get('alarm_s') or 3600)))
        reply = answer(repo, request)
        signal.alarm(0)
        answers.write(json.dumps(reply) + '\n')
        answers.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
