"""What machine a run ran on: one record shared by the benchmarks' results and the trainer's log."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def default_device() -> str:
    """The device a command uses when none is given: "cuda" where torch sees one, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def machine_info(**extra: Any) -> dict[str, Any]:
    """Platform, processor, CPU model, CPU count, torch threads and the CPU kernels torch dispatches to (float
    results can differ between machines whose kernels differ), the versions of torch, diffusers and Python, and
    the load average now (1, 5 and 15 minutes), then ``extra``."""
    import diffusers
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "diffusers": diffusers.__version__, "python": platform.python_version(),
            "load_average": list(os.getloadavg()), **extra}
