import json
import os
import subprocess
import textwrap

import pytest

CHILD = textwrap.dedent('''
    import json, os, subprocess, sys, time
    from aim.ext import TerminalLogCapture

    captured = []
    capture = TerminalLogCapture(captured.extend)
    capture.start()
    print("python print")
    print("to stderr", file=sys.stderr)
    os.write(1, b"C-level write\\n")
    # a grandchild inherits fds 1 and 2 and runs a tqdm bar
    subprocess.run([sys.executable, "-c",
        "import sys, time\\n"
        "from tqdm import tqdm\\n"
        "print('grandchild says hi', flush=True)\\n"
        "for _ in tqdm(range(4), file=sys.stderr, mininterval=0, ascii=True):\\n"
        "    time.sleep(0.01)\\n"], check=True)
    print("last words", end="")
    capture.stop()
    print(" - after stop")
    with open(sys.argv[1], "w") as out:
        json.dump(captured, out)
''')


def run_child(tmp_path, child_env, python, source):
    script = tmp_path / 'child.py'
    script.write_text(source)
    result_file = tmp_path / 'captured.json'
    proc = subprocess.run([python, str(script), str(result_file)], env=child_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(result_file.read_text())


def test_child_process_output_and_tqdm_bar_are_captured_and_still_printed(
        tmp_path, child_env, python):
    proc, captured = run_child(tmp_path, child_env, python, CHILD)
    lines = [line for _, line in captured]
    for expected in ('python print', 'to stderr', 'C-level write', 'grandchild says hi',
                     'last words'):
        assert expected in lines
    bar_lines = [line for line in lines if '4/4' in line or '|' in line]
    assert len(bar_lines) == 1 and bar_lines[0].startswith('100%')
    assert 'after stop' not in ' '.join(lines)
    # the terminal (here: the pipes of this test) still saw everything, in order
    assert 'python print\nC-level write\ngrandchild says hi\n' in proc.stdout
    assert proc.stdout.endswith('last words - after stop\n')
    assert 'to stderr' in proc.stderr and '4/4' in proc.stderr
    timestamps = [t for t, _ in captured]
    assert timestamps == sorted(timestamps) or len(set(timestamps)) > 1


def test_two_captures_share_the_redirection_and_fds_are_restored(
        tmp_path, child_env, python):
    source = textwrap.dedent('''
        import json, os, sys
        from aim.ext import TerminalLogCapture
        before = [os.fstat(fd).st_ino for fd in (1, 2)]
        first, second = [], []
        a = TerminalLogCapture(first.extend); a.start()
        print("for both")
        b = TerminalLogCapture(second.extend); b.start()
        print("also for both")
        a.stop()
        print("only second")
        b.stop()
        after = [os.fstat(fd).st_ino for fd in (1, 2)]
        with open(sys.argv[1], "w") as out:
            json.dump({"first": [l for _, l in first], "second": [l for _, l in second],
                       "restored": before == after}, out)
    ''')
    _, result = run_child(tmp_path, child_env, python, source)
    assert result['first'] == ['for both', 'also for both']
    assert result['second'] == ['also for both', 'only second']
    assert result['restored']


def test_a_failing_sink_warns_once_and_the_terminal_keeps_working(
        tmp_path, child_env, python):
    source = textwrap.dedent('''
        import json, sys
        from aim.ext import TerminalLogCapture
        def sink(lines):
            raise OSError("disk full")
        capture = TerminalLogCapture(sink)
        capture.start()
        for i in range(3):
            print("line", i)
        capture.stop()
        json.dump([], open(sys.argv[1], "w"))
    ''')
    proc, _ = run_child(tmp_path, child_env, python, source)
    assert proc.stdout == 'line 0\nline 1\nline 2\n'
    assert proc.stderr.count('disk full') == 1
    assert 'SideChannelWarning' in proc.stderr


def test_output_at_interpreter_exit_is_not_lost_when_capture_is_never_stopped(
        tmp_path, child_env, python):
    source = textwrap.dedent('''
        import sys
        from aim.ext import TerminalLogCapture
        TerminalLogCapture(lambda lines: None).start()
        print("x" * 200000)   # more than a pipe holds
        print("the end")
    ''')
    script = tmp_path / 'child.py'
    script.write_text(source)
    proc = subprocess.run([python, str(script)], env=child_env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0
    assert proc.stdout.endswith('the end\n')
    assert len(proc.stdout) == 200001 + len('the end\n')


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')
def test_forked_child_output_is_teed_by_the_parent(tmp_path, child_env, python):
    source = textwrap.dedent('''
        import json, os, sys
        from aim.ext import TerminalLogCapture
        captured = []
        capture = TerminalLogCapture(captured.extend); capture.start()
        pid = os.fork()
        if pid == 0:
            print("from the forked worker", flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        capture.stop()
        json.dump([l for _, l in captured], open(sys.argv[1], "w"))
    ''')
    proc, lines = run_child(tmp_path, child_env, python, source)
    assert 'from the forked worker' in lines
    assert 'from the forked worker' in proc.stdout


def test_streams_without_a_file_descriptor_are_teed_at_python_level(
        tmp_path, child_env, python):
    # Jupyter's sys.stdout is such a stream: writes never reach fd 1.
    source = textwrap.dedent('''
        import io, json, sys
        from aim.ext import TerminalLogCapture

        class NotebookStream(io.TextIOBase):
            def __init__(self):
                self.seen = []
            def write(self, text):
                self.seen.append(text)
                return len(text)

        notebook = NotebookStream()
        real_stdout, sys.stdout = sys.stdout, notebook
        captured = []
        capture = TerminalLogCapture(captured.extend)
        capture.start()
        print("cell output")
        print("progress", end="\\r"); print("progress done")
        capture.stop()
        restored = sys.stdout is notebook
        sys.stdout = real_stdout
        json.dump({"lines": [l for _, l in captured], "seen": "".join(notebook.seen),
                   "restored": restored}, open(sys.argv[1], "w"))
    ''')
    _, result = run_child(tmp_path, child_env, python, source)
    assert result['lines'] == ['cell output', 'progress done']
    assert result['seen'] == 'cell output\nprogress\rprogress done\n'
    assert result['restored']


def test_a_child_outliving_the_capture_neither_delays_stop_nor_loses_output(
        tmp_path, child_env, python):
    source = textwrap.dedent('''
        import json, subprocess, sys, time
        from aim.ext import TerminalLogCapture
        captured = []
        capture = TerminalLogCapture(captured.extend); capture.start()
        child = subprocess.Popen([sys.executable, "-c",
            "import time; print('child early', flush=True); time.sleep(1.5); "
            "print('child late', flush=True)"])
        time.sleep(0.8)
        started = time.monotonic()
        capture.stop()
        stop_s = time.monotonic() - started
        child.wait()
        json.dump({"lines": [l for _, l in captured], "stop_s": stop_s}, open(sys.argv[1], "w"))
        time.sleep(0.2)
    ''')
    proc, result = run_child(tmp_path, child_env, python, source)
    assert result['stop_s'] < 0.5
    assert result['lines'] == ['child early']
    assert 'child early\n' in proc.stdout and 'child late\n' in proc.stdout


@pytest.mark.skipif(not hasattr(os, 'openpty'), reason='needs pseudo-terminals')
def test_on_a_terminal_programs_still_see_a_terminal(tmp_path, child_env, python):
    import threading

    source = textwrap.dedent('''
        import json, os, subprocess, sys
        from aim.ext import TerminalLogCapture
        captured = []
        capture = TerminalLogCapture(captured.extend); capture.start()
        ttys = [os.isatty(1), os.isatty(2)]
        print("\\x1b[32mgreen\\x1b[0m text")
        subprocess.run([sys.executable, "-c", "import sys; print('child tty', sys.stdout.isatty())"])
        size = os.get_terminal_size(1)
        capture.stop()
        json.dump({"lines": [l for _, l in captured], "ttys": ttys,
                   "size": [size.columns, size.lines]}, open(sys.argv[1], "w"))
    ''')
    script = tmp_path / 'child.py'
    script.write_text(source)
    result_file = tmp_path / 'captured.json'
    master, slave = os.openpty()
    import fcntl
    import struct
    import termios
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 33, 111, 0, 0))
    child_env.pop('PYTHONUNBUFFERED')  # the grandchild must find its terminal by itself
    proc = subprocess.Popen([python, str(script), str(result_file)], env=child_env,
                            stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    seen = bytearray()

    def read_terminal():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer is gone
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    assert proc.wait(60) == 0, bytes(seen)
    reader.join(5)
    os.close(master)
    result = json.loads(result_file.read_text())
    assert result['ttys'] == [True, True]
    assert result['size'] == [111, 33]
    assert result['lines'] == ['green text', 'child tty True']
    shown = bytes(seen).replace(b'\r\n', b'\n')
    assert b'\x1b[32mgreen\x1b[0m text\n' in shown  # colours reach the terminal unchanged
    assert b'child tty True\n' in shown
