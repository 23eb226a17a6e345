"""Append one row to bench/RESULTS.md (created with its header when missing).

The table is shared by every benchmark script; rows are only ever appended.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_HEADER = (
    "# Benchmark results\n\nAppended by the scripts in bench/. Medians unless stated; ratios from one run.\n\n"
    "| figure | value | machine | command | date |\n|---|---|---|---|---|\n"
)


def machine(device: str) -> str:
    """``platform, N CPUs (load L), torch X, device D`` (with the GPU's name on CUDA).

    The 1-minute load average is there because the project's machines are shared: a figure taken
    at load 4 on 2 cores is not comparable with one taken on an idle machine.
    """
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name(0)})"
    load = os.getloadavg()[0]
    return f"{platform.platform()}, {os.cpu_count()} CPUs (load {load:.1f}), torch {torch.__version__}, device {device}"


def append_row(figure: str, value: str, command: str, device: str) -> None:
    """Append ``| figure | value | machine | command | date |`` to bench/RESULTS.md."""
    if not RESULTS.exists():
        RESULTS.write_text(_HEADER, encoding="utf-8")
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(f"| {figure} | {value} | {machine(device)} | `{command}` | {date} |\n")
