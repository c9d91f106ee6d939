"""GPU sampling logic against a stand-in NVML module.

No NVIDIA GPU runs on the development and CI machines, so the real library cannot be
exercised here; this stand-in implements the handful of NVML calls the reader makes,
with the same names, units and error classes.
"""
import sys
import time
import types

import pytest

from aim.ext import ResourceTracker, gpu_stats


def make_nvml(gpus, *, init_error=None, power_supported=True):
    nvml = types.ModuleType('pynvml')

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    nvml.NVMLError = NVMLError
    nvml.NVMLError_NotSupported = NVMLError_NotSupported
    nvml.NVML_TEMPERATURE_GPU = 0
    nvml.calls = {'init': 0, 'shutdown': 0, 'power': 0}

    def nvmlInit():
        nvml.calls['init'] += 1
        if init_error:
            raise NVMLError(init_error)

    def nvmlShutdown():
        nvml.calls['shutdown'] += 1

    def power(handle):
        nvml.calls['power'] += 1
        if not power_supported:
            raise NVMLError_NotSupported('Not Supported')
        return gpus[handle]['power_mw']

    nvml.nvmlInit = nvmlInit
    nvml.nvmlShutdown = nvmlShutdown
    nvml.nvmlDeviceGetCount = lambda: len(gpus)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=gpus[h]['util'])
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(
        used=gpus[h]['used'], total=gpus[h]['total'])
    nvml.nvmlDeviceGetTemperature = lambda h, sensor: gpus[h]['temp']
    nvml.nvmlDeviceGetPowerUsage = power
    nvml.nvmlDeviceGetName = lambda h: b'NVIDIA H100 80GB HBM3'
    nvml.nvmlSystemGetDriverVersion = lambda: '550.54.15'
    return nvml


GPUS = [
    {'util': 87, 'used': 40 * 2**30, 'total': 80 * 2**30, 'temp': 61, 'power_mw': 312_500},
    {'util': 3, 'used': 0, 'total': 80 * 2**30, 'temp': 35, 'power_mw': 70_000},
]


@pytest.fixture
def fake_nvml(monkeypatch):
    def install(nvml):
        monkeypatch.setitem(sys.modules, 'pynvml', nvml)
        monkeypatch.setattr(gpu_stats, 'nvidia_driver_present', lambda: True)
        return nvml
    return install


def test_every_gpu_is_tracked_with_its_index_as_context(fake_nvml):
    nvml = fake_nvml(make_nvml(GPUS))
    points = []
    tracker = ResourceTracker(lambda v, n, c: points.append((n, c, v)), 1)
    tracker.start()
    time.sleep(0.3)
    tracker.stop()
    gpu_points = {(n, c['gpu']): v for n, c, v in points if n.startswith('__system__gpu')}
    assert gpu_points == {
        ('__system__gpu', 0): 87.0, ('__system__gpu_memory_percent', 0): 50.0,
        ('__system__gpu_temp', 0): 61.0, ('__system__gpu_power_watts', 0): 312.5,
        ('__system__gpu', 1): 3.0, ('__system__gpu_memory_percent', 1): 0.0,
        ('__system__gpu_temp', 1): 35.0, ('__system__gpu_power_watts', 1): 70.0,
    }
    assert nvml.calls['init'] == nvml.calls['shutdown'] == 1


def test_an_unsupported_field_is_skipped_and_not_asked_again(fake_nvml):
    nvml = fake_nvml(make_nvml(GPUS, power_supported=False))
    reader = gpu_stats.GpuStatsReader.open()
    first = list(reader.read())
    second = list(reader.read())
    reader.close()
    assert not [p for p in first + second if p[1] == 'gpu_power_watts']
    assert len(first) == len(second) == 6
    assert nvml.calls['power'] == 2  # once per GPU, then remembered


def test_no_driver_means_no_gpu_metrics_and_no_warning(fake_nvml, recwarn):
    fake_nvml(make_nvml(GPUS, init_error='Driver Not Loaded'))
    assert gpu_stats.GpuStatsReader.open() is None
    assert gpu_stats.describe_gpus() == []
    assert not recwarn.list


def test_gpus_are_described_for_the_system_params(fake_nvml):
    fake_nvml(make_nvml(GPUS))
    gpus = gpu_stats.describe_gpus()
    assert [g['index'] for g in gpus] == [0, 1]
    assert gpus[0]['name'] == 'NVIDIA H100 80GB HBM3'
    assert gpus[0]['memory_total_bytes'] == 80 * 2**30
    assert gpus[0]['driver_version'] == '550.54.15'
