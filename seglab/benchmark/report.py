"""What every `seglab benchmark` prints and writes around its timings: the machine, the load, the JSON's path."""

from __future__ import annotations

import os
from pathlib import Path

from seglab.data.size import size_text


def load_average() -> float | None:
    """The 1-minute load average: other processes on a shared machine slow every backend."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def describe_load(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return ""
    return f"load average {before:.2f} before, {after:.2f} after ({os.cpu_count()} CPUs)"


def describe_machine(about: dict) -> str:
    """One line of `timing.machine()`: the CPU, the instruction-set flags that matter, threads, versions."""
    return (f"cpu: {about['cpu']}; flags: {', '.join(about['isa']) or 'none of avx2/avx512/amx'}; native bf16: "
            f"{about['native_bf16']}; {about['threads']} threads; torch {about['torch']}, onnxruntime "
            f"{about['onnxruntime']}")


def result_path(out: str, project: str, model: str, imgsz) -> Path:
    """<out or project/benchmark>/benchmark_<model file stem or name>_<size>.json (benchmark_unet_256,
    benchmark_best_256x352); the folder is made."""
    folder = Path(out) if out else Path(project) / "benchmark"
    folder.mkdir(parents=True, exist_ok=True)
    size_name = imgsz if isinstance(imgsz, int) else size_text(imgsz)
    return folder / f"benchmark_{Path(str(model)).stem}_{size_name}.json"
