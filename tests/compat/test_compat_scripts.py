"""Whole user scripts, as published for Aim 3, run unchanged in a fresh interpreter."""
import subprocess
import sys
import textwrap

SEED_QUICK_START = '''
from aim.sdk.run import Run

run = Run()  # create Run with default repository
run['params'] = {'foo': 'bar'}  # set Run meta-params for

for i in range(100):
    run.track(i, step=i, name='ordinals', context={})
    run.track(-i, step=i, name='negative integers', context={})
    if i % 2 == 0:
        run.track(i, step=i, name='ordinals', context={'odds': True})
'''

SEED_QUERY = '''
from aim.sdk.repo import Repo

repo = Repo.default_repo()  # get default repository instance

q = \'\'\'
metric.run.params.foo == 'bar' and metric = 'ordinals' and context['odds'] = True
\'\'\'

traces = repo.traces(query=q)  # query metric traces
for trc in traces:
    odd_ordinals = trc.values.values_list()  # return tracked values as list
    print(len(odd_ordinals), odd_ordinals[:3], trc.values.sparse_numpy()[0][:3].tolist())
'''

HEAD_STYLE_TRAINING = '''
import aim
from aim import Repo, Run
from aim.sdk.types import QueryReportMode
from aim.storage.context import Context

run = Run(experiment='mnist', system_tracking_interval=None)
run['hparams'] = {'lr': 0.01, 'batch_size': 64}
run.add_tag('baseline')
for epoch in range(2):
    for i in range(5):
        run.track({'loss': 1.0 / (i + 1), 'acc': i / 5}, epoch=epoch,
                  context={'subset': 'train'})
    run.track(0.9, name='acc', epoch=epoch, context={'subset': 'val'})
run.close()

repo = Repo.default_repo()
q = "run.hparams.lr < 0.1 and metric.name == 'loss' and metric.context.subset == 'train'"
for item in repo.query_metrics(q, report_mode=QueryReportMode.DISABLED).iter_runs():
    for metric in item:
        steps, (values, epochs, times) = metric.data.numpy()
        print(item.run.hash == run.hash, metric.name, len(steps), epochs.tolist()[-1])
val = run.get_metric('acc', Context({'subset': 'val'}))
print(val.values.values_list(), val.last_step())
print(repo.query_metrics(q).dataframe().shape[0])
print([r.experiment for r in repo.iter_runs()])
'''


def _python(script, cwd):
    out = subprocess.run([sys.executable, '-c', textwrap.dedent(script)], cwd=cwd,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_seed_quick_start_and_query(tmp_path):
    init = subprocess.run([sys.executable, '-m', 'aim', 'init'], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert init.returncode == 0, init.stderr
    assert _python(SEED_QUICK_START, tmp_path) == []
    assert _python(SEED_QUERY, tmp_path) == ['50 [0, 2, 4] [0, 2, 4]']


def test_head_style_training_script(tmp_path):
    lines = _python(HEAD_STYLE_TRAINING, tmp_path)
    # two epochs of five dict-tracked points: default steps continue across epochs
    assert lines == ['True loss 10 1', '[0.9, 0.9] 1', '10', "['mnist']"]
