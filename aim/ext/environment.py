"""What a run was started with: interpreter, arguments, packages, environment, machine, git.

``collect_system_params()`` returns a JSON-ready dict that a run stores once, under the
param ``__system_params`` (the name Aim uses). Each part is collected on its own; a part
that fails is left out with one warning, never raised.
"""
from __future__ import annotations

import os
import platform
import re
import socket
import sys
from collections.abc import Callable

from aim.ext.git_info import collect_git_info
from aim.ext.gpu_stats import describe_gpus
from aim.ext.warn_once import warn_once

MASKED_VALUE = '***'
# Substrings that make an environment variable's value secret. Aim drops such
# variables; we keep the name (useful to know it was set) and mask the value.
SECRET_NAME_PARTS = ('KEY', 'TOKEN', 'SECRET', 'PASSWORD', 'PASSWD', 'CREDENTIAL')


def collect_system_params(cwd: str | None = None) -> dict:
    """Everything about the process and machine that a run records once."""
    parts: dict[str, Callable[[], object]] = {
        'python_version': lambda: sys.version,
        'python_implementation': platform.python_implementation,
        'executable': lambda: sys.executable,
        'arguments': lambda: list(sys.argv),
        'packages': installed_packages,
        'env_variables': lambda: masked_environment(os.environ),
        'hostname': socket.gethostname,
        'platform': platform.platform,
        'cpu': describe_cpu,
        'gpus': describe_gpus,
        'git_info': lambda: collect_git_info(cwd),
    }
    params = {}
    for key, collect in parts.items():
        try:
            params[key] = collect()
        except Exception as exc:
            warn_once(f'system-params-{key}',
                      f'Could not record {key} in the run\'s system params: {exc!r}. '
                      f'Training goes on; the rest is recorded.')
    return params


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def masked_environment(environ) -> dict[str, str]:
    return {name: MASKED_VALUE if is_secret_name(name) else value
            for name, value in sorted(environ.items())}


def installed_packages() -> dict[str, str]:
    """``{distribution name: version}`` of everything importable by this interpreter."""
    from importlib import metadata  # tens of milliseconds: only when params are collected

    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata['Name'] if dist.metadata else None
        if name and name not in packages:  # the first one on sys.path wins, as in import
            packages[name] = dist.version
    return dict(sorted(packages.items(), key=lambda item: item[0].lower()))


def describe_cpu() -> dict:
    import psutil

    info = {
        'model': _cpu_model_name() or platform.processor() or platform.machine(),
        'architecture': platform.machine(),
        'logical_cores': psutil.cpu_count(logical=True),
        'physical_cores': psutil.cpu_count(logical=False),
        'memory_total_bytes': psutil.virtual_memory().total,
    }
    return info


def _cpu_model_name() -> str | None:
    # platform.processor() is empty on most Linux systems; /proc/cpuinfo has the name.
    try:
        with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as cpuinfo:
            for line in cpuinfo:
                match = re.match(r'(model name|Hardware|Processor)\s*:\s*(.+)', line)
                if match:
                    return match.group(2).strip()
    except OSError:
        pass
    return None
