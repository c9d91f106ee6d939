"""Rich objects through ``aim server``: tracked by a remote client, read through the server,
and kept by the spool when the client dies or the server is down."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from aim import Image, Repo, Run, Text

pytestmark = pytest.mark.backends

CLIENT = textwrap.dedent('''
    import sys, time
    import numpy as np
    from aim import Run, Image, Text, Distribution
    url, n = sys.argv[1], int(sys.argv[2])
    run = Run(repo=url, system_tracking_interval=None, capture_terminal_logs=False)
    print(run.hash, flush=True)
    for i in range(n):
        px = np.full((8, 8, 3), i % 256, dtype=np.uint8)
        run.track(Image(px, caption=f'c{i}'), name='img', step=i)
        run.track([Text(f'a{i}'), Text(f'b{i}')], name='gen', step=i)
        print('ack', i, flush=True)
    time.sleep(3600)
''')


@pytest.fixture(autouse=True)
def spool(tmp_path, monkeypatch):
    path = str(tmp_path / 'spool')
    monkeypatch.setenv('AIM_SPOOL_DIR', path)
    return path


def test_objects_tracked_through_a_server(aim_server):
    server = aim_server()
    run = Run(repo=server.url, system_tracking_interval=None, capture_terminal_logs=False)
    pixels = np.random.default_rng(0).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    for step in range(3):
        run.track(Image(pixels, caption=f's{step}'), name='samples', step=step,
                  context={'subset': 'val'})
    run.track([Text('x'), Text('y')], name='gen', step=0)
    run.close()
    # what the server's repository holds, read directly
    local = Repo(server.repo).get_run(run.hash)
    seq = local.get_image_sequence('samples', {'subset': 'val'})
    assert seq.values.indices_list() == [0, 1, 2]
    img = seq.values.last_value()
    assert img.caption == 's2'
    assert np.array_equal(np.asarray(img.to_pil_image()), pixels)
    db = Repo(server.repo)._store.db
    assert db.query('SELECT count(*) FROM blobs')[0][0] == 1     # the same pixels, once
    # and read through the server
    remote = Repo(server.url)
    seq = remote.get_run(run.hash).get_image_sequence('samples', {'subset': 'val'})
    assert np.array_equal(np.asarray(seq.values.first_value().to_pil_image()), pixels)
    assert [t.data for t in remote.get_run(run.hash).get_text_sequence('gen').values
            .last_value()] == ['x', 'y']
    found = list(remote.query_images("images.context.subset == 'val'"))
    assert [(s.run.hash, s.name) for s in found] == [(run.hash, 'samples')]


def test_a_killed_client_loses_no_acknowledged_object(aim_server, tmp_path):
    server = aim_server()
    proc = subprocess.Popen([sys.executable, '-c', CLIENT, server.url, '1000'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    run_hash = proc.stdout.readline().strip()
    acked = -1
    while acked < 40:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        acked = int(line.split()[1])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the next process that uses the server ships the dead client's spool
    aim = os.path.join(os.path.dirname(sys.executable), 'aim')
    out = subprocess.run([aim, 'sync'], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stdout + out.stderr
    run = Repo(server.repo).get_run(run_hash)
    images = run.get_image_sequence('img')
    steps = images.values.indices_list()
    assert steps[:acked + 1] == list(range(acked + 1))
    for step, img in list(images.values.items())[:acked + 1]:
        assert img.caption == f'c{step}'
        assert np.asarray(img.to_pil_image())[0, 0, 0] == step % 256
    texts = run.get_text_sequence('gen').values.values_list()
    assert [t.data for t in texts[acked]] == [f'a{acked}', f'b{acked}']
