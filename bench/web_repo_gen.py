"""Generate large repositories for the web benchmarks, once, and reuse them.

A handful of template runs are written through the SDK (4 series of N steps each); every
benchmark run is a copy of one of them, made with SQL inside the repository database (the
layout of docs/storage.md) and given its own hash, name, params and creation time, then
indexed through the storage layer. Copying keeps a 10,000-run repository to minutes.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid

import numpy as np

SPIKE_VALUE = 1e3
SERIES = (('loss', None), ('acc', None), ('loss', {'subset': 'val'}), ('grad_norm', None))


def _template(repo, seed: int, steps: int) -> str:
    from aim import Run
    rng = np.random.default_rng(seed)
    run = Run(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    curves = {
        ('loss', None): np.exp(-np.arange(steps) / (steps / 4)) + rng.normal(0, 0.02, steps),
        ('acc', None): 1 - np.exp(-np.arange(steps) / (steps / 3)) + rng.normal(0, 0.01, steps),
        ('loss', 'val'): np.exp(-np.arange(steps) / (steps / 3.5)) + rng.normal(0, 0.03, steps),
        ('grad_norm', None): np.abs(rng.normal(1, 0.3, steps)).cumsum() / np.arange(1, steps + 1),
    }
    if seed == 0:
        curves[('loss', None)][steps // 3] = SPIKE_VALUE  # one step in `steps`
    per_epoch = max(1, steps // 10)
    for s in range(steps):
        epoch = s // per_epoch
        run.track(float(curves[('loss', None)][s]), name='loss', step=s, epoch=epoch)
        run.track(float(curves[('acc', None)][s]), name='acc', step=s, epoch=epoch)
        run.track(float(curves[('loss', 'val')][s]), name='loss', step=s, epoch=epoch,
                  context={'subset': 'val'})
        run.track(float(curves[('grad_norm', None)][s]), name='grad_norm', step=s, epoch=epoch)
    run.close()
    return run.hash


def generate(path: str, n_runs: int, steps: int, templates: int = 8) -> dict:
    """Create (or reuse) a repository of ``n_runs`` runs at ``path``; returns its manifest.
    The spike run (one-step spike in ``loss``) is the newest run."""
    manifest_path = os.path.join(path, 'manifest.json')
    from aim import Repo
    from aim.errors import AimError
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
        try:  # reuse only what this version of the storage still reads as written
            if Repo(path).total_runs_count() == n_runs == manifest['runs'] and \
                    manifest.get('overviews') == 2:
                return manifest
        except AimError:
            pass
    from aim.storage import overview
    from aim.storage.encoding import dumps_params
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    started = time.time()
    repo = Repo(path, init=True)
    n_templates = min(templates, n_runs)
    template_hashes = [_template(repo, seed, steps) for seed in range(n_templates)]
    store = repo._store
    template_series = {h: store.db.query(
        'SELECT id, name, context, count, first_step, last_step, last, min, max, last_time, '
        'dtype FROM series WHERE run_hash=?', (h,)) for h in template_hashes}
    rng = np.random.default_rng(1)
    base_time = time.time() - n_runs
    all_hashes = []
    batch = 100
    for start in range(0, n_runs, batch):
        # Copy template rows inside the database, a batch of runs per transaction: the
        # chunk blobs never leave SQLite.
        with store.db.write() as conn:
            for i in range(start, min(n_runs, start + batch)):
                spike = i == n_runs - 1
                src = template_hashes[0] if spike or n_templates == 1 else \
                    template_hashes[1 + i % (n_templates - 1)]
                run_hash = uuid.uuid4().hex[:24]
                props = {'name': f'run-{i:05d}' + (' (spike)' if spike else ''),
                         'experiment': f'exp-{i % 7}', 'creation_time': base_time + i,
                         'end_time': base_time + i + 60, 'updated_at': base_time + i + 60,
                         'archived': False, 'tags': ['bench', 'even' if i % 2 == 0 else 'odd'],
                         'description': None}
                params = {'hparams': {'lr': float(10 ** rng.uniform(-5, -1)),
                                      'batch': int(2 ** rng.integers(4, 9)),
                                      'optimizer': ['adam', 'sgd', 'adamw'][i % 3],
                                      'dropout': round(float(rng.uniform(0, 0.5)), 3)},
                          'seed': i, 'index': i}
                data = store.run_data(run_hash)
                data.put_props(conn, props)
                data.put_params_text(conn, dumps_params(params))
                for sid, *rest in template_series[src]:
                    new_id = conn.execute(
                        'INSERT INTO series(run_hash, name, context, count, first_step, '
                        'last_step, last, min, max, last_time, dtype) '
                        'VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', (run_hash, *rest)).lastrowid
                    conn.execute('INSERT INTO chunks SELECT ?, seq, first_step, last_step, n, '
                                 'steps, vals, epochs, times FROM chunks WHERE series_id=?',
                                 (new_id, sid))
                    conn.execute(f'INSERT INTO overviews({overview.COLUMNS}) SELECT ?, seq, '
                                 f'n, first_step, stride, last_time, points FROM overviews '
                                 f'WHERE series_id=?', (new_id, sid))
                store._index_run(conn, data)
                all_hashes.append(run_hash)
    for h in template_hashes:
        store.delete_run(h)
    manifest = {'runs': n_runs, 'steps': steps, 'series_per_run': len(SERIES),
                'spike_run': all_hashes[-1], 'spike_step': steps // 3,
                'spike_value': SPIKE_VALUE, 'overviews': 2, 'seconds': round(time.time() - started, 1)}
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f)
    return manifest
