"""Device and numeric precision for training: CUDA with bf16/fp16 autocast when present; on CPU,
bf16 autocast where the CPU has native bf16 instructions, fp32 otherwise.

Measured on this project's machines (bench/finetune.py, 0.5B, LoRA): on an AMD EPYC with
``avx512_bf16``, bf16 autocast trains at 81 tokens/s against 61 for fp32, with the same dev loss
after 40 steps (0.124 vs 0.123); on CPUs without native bf16 a bf16 step was measured over 38x
slower than fp32, so ``auto`` only picks bf16 on CPUs that report it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from kgrag.errors import KgragError

Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Plan:
    """Where and how training runs."""

    device: str  # "cuda" or "cpu"
    precision: str  # "fp32", "fp16" or "bf16" (the resolved choice, never "auto")
    autocast_dtype: torch.dtype | None  # None: no autocast (fp32)
    grad_scaler: bool  # fp16 needs loss scaling; bf16 and fp32 do not

    @property
    def autocast(self) -> torch.autocast:
        """The autocast context for forward passes (disabled for fp32)."""
        return torch.autocast(
            device_type=self.device,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        )


_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has bf16 arithmetic instructions (x86 flags avx512_bf16 or amx_bf16)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(_NATIVE_BF16_FLAGS & set(line.split(":", 1)[-1].split()))
    return False


def select_plan(
    requested: str,
    cuda_available: bool | None = None,
    cuda_bf16: bool | None = None,
    device: str | None = None,
    cpu_bf16: bool | None = None,
) -> Plan:
    """The training plan for ``--precision requested`` on this machine.

    ``auto``: CUDA with bf16 where the GPU supports it, else fp16 with a GradScaler; on CPU bf16
    where the CPU has native bf16, else fp32. ``device`` forces "cpu" (or "cuda"); the booleans
    default to what torch and /proc/cpuinfo report.
    """
    if requested not in PRECISIONS:
        raise KgragError(f"unknown precision {requested!r}: choose one of {', '.join(PRECISIONS)}")
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if device is None:
        device = "cuda" if cuda_available else "cpu"
    if device not in ("cpu", "cuda"):
        raise KgragError(f"unknown device {device!r}: choose cpu or cuda")
    if device == "cuda" and not cuda_available:
        raise KgragError("device cuda requested but torch sees no CUDA GPU")
    if device == "cuda" and cuda_bf16 is None:
        cuda_bf16 = torch.cuda.is_bf16_supported()
    precision = requested
    if precision == "auto" and device == "cuda":
        precision = "bf16" if cuda_bf16 else "fp16"
    elif precision == "auto":
        precision = "bf16" if (cpu_has_native_bf16() if cpu_bf16 is None else cpu_bf16) else "fp32"
    if precision == "fp16" and device == "cpu":
        raise KgragError("fp16 training needs a CUDA GPU; on CPU use --precision fp32 (or bf16)")
    if precision == "bf16" and device == "cuda" and not cuda_bf16:
        raise KgragError("this GPU does not support bf16; use --precision fp16")
    return Plan(
        device=device,
        precision=precision,
        autocast_dtype=_DTYPES.get(precision),
        grad_scaler=precision == "fp16",
    )
