"""The SDK: Run, Repo, Metric and the query collections."""
from aim.sdk.repo import Repo
from aim.sdk.run import Run

__all__ = ['Metric', 'Repo', 'Run']


def __getattr__(name):
    if name in ('Metric', 'Trace'):
        from aim.sdk import trace
        return getattr(trace, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
