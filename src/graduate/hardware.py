"""What the machine offers the process: the cores it may use."""

from __future__ import annotations

import os


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask, so containers and taskset are respected)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 training pays off.
    Reads /proc/cpuinfo; False where it cannot tell."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def bf16_pays_off(device: str) -> bool:
    """bf16 autocast on ``device`` (cpu | cuda) is native and faster than fp32."""
    if device == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    return cpu_has_bf16()
