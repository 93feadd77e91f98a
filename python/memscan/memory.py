"""Peak memory of a stretch of work in this process: resident memory (Linux lets a process
reset its high-water mark; elsewhere the process's lifetime peak is what there is) and,
on a GPU, the most torch allocated."""

from __future__ import annotations

import resource
from pathlib import Path

import torch


def reset_peaks() -> bool:
    """Start a new stretch; False where the resident peak cannot be reset (not Linux)."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset VmHWM, the peak RSS
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """The resident high-water mark since `reset_peaks` (or since the process started)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def peak_cuda_mib(device: torch.device) -> float | None:
    """The most torch allocated on the GPU since `reset_peaks`; None for work not on a GPU."""
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
