"""A real ``aim server`` subprocess on a free port (see conftest.py's ``aim_server``)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT_S = 30.0


def aim_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), 'aim')
    return [script] if os.path.exists(script) else [sys.executable, '-m', 'aim.cli.main']


class AimServer:
    def __init__(self, repo: str, workdir: str, *, tokens=None, tls=None, workers: int = 1,
                 extra_args=(), env=None):
        self.repo = repo
        self.tls = tls
        self.workers = workers
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.token_file = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        if tokens is not None:
            self.token_file = os.path.join(workdir, 'tokens')
            text = tokens if isinstance(tokens, str) else \
                ''.join(f'{name}:{secret}\n' for name, secret in tokens.items())
            with open(self.token_file, 'w') as f:
                f.write(text)
            os.chmod(self.token_file, 0o600)

    @property
    def url(self) -> str:
        return f'{"aims" if self.tls else "aim"}://127.0.0.1:{self.port}'

    @property
    def http_url(self) -> str:
        return f'{"https" if self.tls else "http"}://127.0.0.1:{self.port}'

    def output(self) -> str:
        with self._lock:
            return ''.join(self._lines)

    def start(self) -> AimServer:
        args = [*aim_command(), 'server', '--repo', self.repo, '--port', str(self.port)]
        if self.token_file:
            args += ['--token-file', self.token_file]
        if self.tls:
            cert, key = self.tls
            args += ['--ssl-certfile', cert, '--ssl-keyfile', key]
        if self.workers != 1:
            args += ['--workers', str(self.workers)]
        args += self.extra_args
        env = {k: v for k, v in os.environ.items() if not k.startswith('AIM_')}
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO_ROOT, env.get('PYTHONPATH')]))
        env['PYTHONUNBUFFERED'] = '1'
        env.update(self.env)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, start_new_session=True)
        started = threading.Event()
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._drain, args=(stream, started), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not started.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                time.sleep(0.2)  # the rest of what it printed
                self.kill()
                raise RuntimeError(f'aim server did not start:\n{self.output()}')
        self._wait_until_serving(deadline)
        return self

    def _drain(self, stream, started: threading.Event) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line)
            if line.startswith('aim server listening on '):
                self.port = int(line.split()[4].rsplit(':', 1)[1])
                started.set()

    def _wait_until_serving(self, deadline: float) -> None:
        """The socket listens from the first line; wait for a process to answer on it."""
        import http.client
        import ssl
        while time.monotonic() < deadline:
            if self.tls:
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    '127.0.0.1', self.port, timeout=5,
                    context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=5)
            try:
                conn.request('GET', '/api/remote/v1/hello')
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.1)
            finally:
                conn.close()
        raise RuntimeError(f'aim server did not answer:\n{self.output()}')

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._kill_group()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is None:
            return
        self._kill_group()
        self.proc.wait()

    def _kill_group(self) -> None:
        try:  # the server, its workers and their query processes: one session of our own
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def restart(self) -> AimServer:
        self.stop()
        with self._lock:
            self._lines.append('--- restart ---\n')
        return self.start()
