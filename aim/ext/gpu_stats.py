"""GPU utilisation, memory, temperature and power through NVML.

``pynvml`` (package ``nvidia-ml-py``, the ``gpu`` extra) is imported only when a tracker
starts. No package, no driver or no GPU means no GPU metrics, without a warning: most
machines have no NVIDIA GPU and that is not a problem.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from aim.ext.warn_once import warn_once


class GpuStatsReader:
    """Reads every NVIDIA GPU's stats; a field a GPU does not support is left out."""

    def __init__(self, nvml, handles: list):
        self._nvml = nvml
        self._handles = handles
        # Fields that raised NotSupported once, per GPU, so they are not asked again.
        self._unsupported: set[tuple[int, str]] = set()

    @classmethod
    def open(cls) -> GpuStatsReader | None:
        """Initialise NVML; ``None`` when there is no usable NVIDIA GPU."""
        if not nvidia_driver_present():
            return None
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
        except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return None
        try:
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:
            warn_once('gpu-open', f'GPU metrics are not tracked: NVML could not list the '
                                  f'GPUs ({exc!r}). Training goes on.')
            cls._shutdown(pynvml)
            return None
        if not handles:
            cls._shutdown(pynvml)
            return None
        return cls(pynvml, handles)

    def read(self) -> Iterator[tuple[int, str, float]]:
        """Yield ``(gpu_index, short_name, value)`` for every field that can be read."""
        nvml = self._nvml
        fields = (
            ('gpu', lambda h: nvml.nvmlDeviceGetUtilizationRates(h).gpu),
            ('gpu_memory_percent', self._memory_percent),
            ('gpu_temp', lambda h: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
            ('gpu_power_watts', lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0),
        )
        for index, handle in enumerate(self._handles):
            for short_name, read in fields:
                if (index, short_name) in self._unsupported:
                    continue
                try:
                    value = float(read(handle))
                except nvml.NVMLError_NotSupported:
                    self._unsupported.add((index, short_name))
                    continue
                except Exception as exc:
                    warn_once(f'gpu-read-{short_name}',
                              f'Could not read {short_name} of GPU {index}: {exc!r}; the '
                              f'sample is skipped and further failures are not reported.')
                    continue
                yield index, short_name, value

    def _memory_percent(self, handle) -> float:
        info = self._nvml.nvmlDeviceGetMemoryInfo(handle)
        return 100.0 * info.used / info.total if info.total else 0.0

    def close(self) -> None:
        self._shutdown(self._nvml)

    @staticmethod
    def _shutdown(nvml) -> None:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def nvidia_driver_present() -> bool:
    """A cheap look for the NVIDIA driver before importing pynvml (a large module)."""
    if sys.platform.startswith('linux'):
        return os.path.exists('/proc/driver/nvidia/version') or \
            os.path.exists('/dev/nvidiactl')
    return True  # elsewhere, NVML itself is the only way to know


def describe_gpus() -> list[dict]:
    """Name, memory and driver of each NVIDIA GPU, for the run's system params."""
    reader = GpuStatsReader.open()
    if reader is None:
        return []
    nvml = reader._nvml
    gpus = []
    try:
        try:
            driver = _text(nvml.nvmlSystemGetDriverVersion())
        except Exception:
            driver = None
        for index, handle in enumerate(reader._handles):
            gpu = {'index': index, 'driver_version': driver}
            try:
                gpu['name'] = _text(nvml.nvmlDeviceGetName(handle))
                gpu['memory_total_bytes'] = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
            except Exception:
                pass
            gpus.append(gpu)
    finally:
        reader.close()
    return gpus


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
