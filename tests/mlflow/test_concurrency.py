"""Several MLflow clients writing the same runs through a server of several worker
processes: every point once, every param kept."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def test_parallel_writers_through_two_workers(aim_server):
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from aim import Repo
    server = aim_server(workers=2, extra_args=['--no-ui'])
    client = MlflowClient(tracking_uri=server.http_url)
    exp = client.create_experiment('parallel')
    runs = [client.create_run(exp, run_name=f'p{i}').info.run_id for i in range(3)]

    def write(args):
        writer, rid = args
        c = MlflowClient(tracking_uri=server.http_url)
        for chunk in range(5):
            steps = range(writer * 1000 + chunk * 100, writer * 1000 + chunk * 100 + 100)
            c.log_batch(rid, metrics=[Metric('x', float(s), 1_700_000_000_000 + s, s)
                                      for s in steps],
                        params=[Param(f'w{writer}', str(writer))])
        for s in range(10):
            c.log_metric(rid, 'single', float(s), step=writer * 100 + s)

    jobs = [(w, rid) for rid in runs for w in range(4)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(write, jobs))
    for rid in runs:
        client.set_terminated(rid)
    repo = Repo(server.repo)
    for rid in runs:
        got = client.get_run(rid)
        assert got.data.params == {f'w{w}': str(w) for w in range(4)}
        assert got.info.status == 'FINISHED'
        steps = [m.step for m in client.get_metric_history(rid, 'x')]
        assert steps == sorted(w * 1000 + c * 100 + i for w in range(4) for c in range(5)
                               for i in range(100))
        assert repo.get_run(rid).get_metric('single').count == 40
    # each server process wrote each run as a stream of its own
    streams = repo._store.db.query("SELECT run_hash, COUNT(*) FROM remote_streams WHERE "
                                   "stream LIKE 'mlflow-%' GROUP BY run_hash")
    assert {h for h, _ in streams} == set(runs)
    assert all(1 <= n <= 2 for _, n in streams)
