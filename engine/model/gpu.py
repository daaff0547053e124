"""GPU telemetry through NVML (nvidia-ml-py's ``pynvml``), for the gear panel.

Every metric is read on its own and may be missing: a machine without a GPU, a
container without the driver library, or WSL just gives ``GpuStats(available=False,
reason="no GPU")`` and never an exception. The worker polls at most twice a second.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.protocol.messages import GpuStats

log = logging.getLogger("engine.model.gpu")

POLL_SECONDS = 0.5  # <= 2 Hz


class GpuProbe:
    def __init__(self, index: int = 0) -> None:
        self.nvml: Any = None
        self.handle: Any = None
        self.name = ""
        self.reason = "no GPU"
        try:
            import pynvml

            pynvml.nvmlInit()
            if pynvml.nvmlDeviceGetCount() <= index:
                return
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.nvml = pynvml
            self.name = _text(_guard(lambda: pynvml.nvmlDeviceGetName(self.handle)) or "GPU")
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, driver errors…
            log.info("no GPU telemetry: %s", exc)
            self.nvml = self.handle = None

    @property
    def available(self) -> bool:
        return self.handle is not None

    def compute_capability(self) -> tuple[int, int] | None:
        """(major, minor), e.g. (9, 0) for an H100; None when NVML does not say."""
        if not self.available:
            return None
        got = _guard(lambda: self.nvml.nvmlDeviceGetCudaComputeCapability(self.handle))
        return (int(got[0]), int(got[1])) if got is not None else None

    def read(self) -> GpuStats:
        if not self.available:
            return GpuStats(available=False, reason=self.reason)
        nvml, handle = self.nvml, self.handle
        util = _guard(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        memory = _guard(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        temp = _guard(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        power = _guard(lambda: nvml.nvmlDeviceGetPowerUsage(handle))  # milliwatts
        limit = _guard(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        return GpuStats(
            available=True,
            name=self.name,
            utilization=float(util) if util is not None else None,
            memory_used=int(memory.used) if memory is not None else None,
            memory_total=int(memory.total) if memory is not None else None,
            temperature=float(temp) if temp is not None else None,
            power_watts=power / 1000 if power is not None else None,
            power_limit_watts=limit / 1000 if limit is not None else None,
        )


def _guard(read: Any) -> Any:
    """One metric; None when this GPU, driver or container does not offer it."""
    try:
        return read()
    except Exception:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
