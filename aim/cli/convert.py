"""``aim convert``: bring TensorBoard logs, MLflow stores and W&B run folders into a
repository."""
from __future__ import annotations

import os
import sys
import time

import click

from aim.errors import AimError


def _target_repo(path: str):
    from aim.sdk.repo import Repo
    try:
        return Repo.from_path(path, init=not Repo.exists(path))
    except AimError as exc:
        raise click.ClickException(str(exc)) from None


def _need(module: str, package: str) -> None:
    import importlib.util
    if importlib.util.find_spec(module) is None:
        raise click.ClickException(f'This converter reads its source with the `{package}` '
                                   f'package, which is not installed: pip install {package}')


def _print_summary(report, elapsed: float, what: str) -> None:
    click.echo(f'Converted {len(report.converted)} {what} run(s) ({report.points:,} points) '
               f'in {elapsed:.1f} s; {len(report.unchanged)} already converted and unchanged.')
    for kind, n in sorted(report.not_converted.items()):
        click.echo(f'NOT CONVERTED  {n:,} {kind}')
    for name, reason in report.failed:
        click.echo(f'FAILED  {name}: {reason}', err=True)


@click.group()
def convert():
    """Convert runs of other trackers (TensorBoard, MLflow, W&B) into aim runs. Converting
    again adds nothing: runs already converted from unchanged sources are kept."""


@convert.command()
@click.option('--logdir', required=True, type=click.Path(exists=True, file_okay=False),
              help='TensorBoard log directory.')
@click.option('--repo', default='.', type=click.Path(file_okay=False),
              help='Repository to convert into (default: current directory; created if '
                   'missing).')
@click.option('--flat', is_flag=True,
              help='Every folder holding event files is a run of its own (no context '
                   'folders).')
@click.option('--experiment', default=None, help="The runs' experiment (default: 'default').")
@click.option('--workers', default=None, type=click.IntRange(1, 64),
              help='Processes reading event files (default: one per CPU).')
@click.option('--no-cache', is_flag=True, hidden=True, help='Accepted for Aim compatibility.')
def tensorboard(logdir, repo, flat, experiment, workers, no_cache):
    """Convert TensorBoard logs: scalars become metrics (a run's sub-folders such as
    train/ and validation/ become contexts), images Image, histograms Distribution, text
    Text, audio Audio, hparams the `hparams` param. What has no such type is counted and
    reported as not converted."""
    _need('tensorboard', 'tensorboard')
    from aim.converters.tensorboard import convert_tensorboard, discover_runs
    target = _target_repo(repo)
    total = len(discover_runs(logdir, flat))
    if not total:
        raise click.ClickException(f'No TensorBoard event files under {os.path.abspath(logdir)}.')
    start = time.perf_counter()
    with click.progressbar(length=total, label='Converting TensorBoard runs',
                           file=sys.stderr) as bar:
        report = convert_tensorboard(target, logdir, experiment=experiment, flat=flat,
                                     workers=workers, progress=lambda _name: bar.update(1))
    _print_summary(report, time.perf_counter() - start, 'TensorBoard')
    if report.failed:
        raise SystemExit(1)


@convert.command()
@click.option('--tracking_uri', '--tracking-uri', 'tracking_uri', default=None,
              help='MLflow tracking URI: a folder (file store), file:///..., or '
                   'sqlite:///path.db (default: $MLFLOW_TRACKING_URI, else ./mlruns).')
@click.option('--experiment', '-e', default=None,
              help='Convert only this MLflow experiment (its name or id).')
@click.option('--repo', default='.', type=click.Path(file_okay=False),
              help='Repository to convert into (default: current directory; created if '
                   'missing).')
def mlflow(tracking_uri, experiment, repo):
    """Convert MLflow runs: params, metrics with their steps and timestamps, tags
    (`mlflow.runName` becomes the run name), one aim experiment per MLflow experiment."""
    _need('mlflow', 'mlflow')
    from aim.converters.mlflow import convert_mlflow, list_mlflow_runs
    target = _target_repo(repo)
    uri = tracking_uri or os.environ.get('MLFLOW_TRACKING_URI') or 'mlruns'
    try:
        runs = list_mlflow_runs(uri, experiment)
    except AimError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:   # MLflow's own errors: an old schema, a store it cannot open
        raise click.ClickException(f'MLflow could not read the store at {uri}: '
                                   f'{type(exc).__name__}: {exc}') from None
    if not runs:
        raise click.ClickException(f'No MLflow runs found at {uri}'
                                   + (f' in experiment {experiment!r}.' if experiment else '.'))
    start = time.perf_counter()
    with click.progressbar(length=len(runs), label='Converting MLflow runs',
                           file=sys.stderr) as bar:
        report = convert_mlflow(target, uri, runs, progress=lambda _name: bar.update(1))
    _print_summary(report, time.perf_counter() - start, 'MLflow')
    if report.failed:
        raise SystemExit(1)


@convert.command()
@click.option('--wandb_dir', '--wandb-dir', 'wandb_dir', default='wandb',
              type=click.Path(exists=True, file_okay=False),
              help="W&B's local folder (default: ./wandb), a folder above it, or one run "
                   "folder (run-YYYYMMDD_HHMMSS-<id>, offline-run-...).")
@click.option('--experiment', '-e', default=None,
              help="The runs' experiment (default: each run's W&B project).")
@click.option('--repo', default='.', type=click.Path(file_okay=False),
              help='Repository to convert into (default: current directory; created if '
                   'missing).')
def wandb(wandb_dir, experiment, repo):
    """Convert W&B run folders offline, from their run-<id>.wandb logs: history metrics
    with their steps and times, system metrics, config (the `hparams` param), name, tags,
    notes, and summary and run id (the `wandb` param); images become Image, histograms
    Distribution. Tables and other media are counted and reported as not converted."""
    import importlib.util
    if importlib.util.find_spec('wandb') is None:
        raise click.ClickException("This converter reads W&B's logs with the `wandb` package, "
                                   "which is not installed: pip install 'wandb<0.30'")
    if importlib.util.find_spec('wandb.sdk.internal.datastore') is None:
        import wandb as wandb_package
        raise click.ClickException(
            f'wandb {getattr(wandb_package, "__version__", "?")} has no reader for .wandb '
            f"logs (wandb 0.30 removed it from the package): pip install 'wandb<0.30' in "
            f'the environment that converts (the logs of newer versions are read too).')
    from aim.converters.wandb import convert_wandb, discover_wandb_runs
    runs = discover_wandb_runs(wandb_dir)
    if not runs:
        raise click.ClickException(f'No W&B run folders (with a run-<id>.wandb log) under '
                                   f'{os.path.abspath(wandb_dir)}.')
    target = _target_repo(repo)
    start = time.perf_counter()
    with click.progressbar(length=len(runs), label='Converting W&B runs',
                           file=sys.stderr) as bar:
        report = convert_wandb(target, wandb_dir, runs, experiment=experiment,
                               progress=lambda _name: bar.update(1))
    _print_summary(report, time.perf_counter() - start, 'W&B')
    if report.failed:
        raise SystemExit(1)
