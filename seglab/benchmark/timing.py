"""Inference speed of one model on several backends, timed in interleaved rounds.

Backends (what each adds to the previous):
- eager: PyTorch as a tutorial writes it: fp32, NCHW, BatchNorm as separate layers.
- channels_last: the same with the model and input in channels_last layout.
- fast: seglab's settings: channels_last, conv+BN folded, bf16 autocast where the CPU runs bf16
  natively (fp32 otherwise); what `seglab predict` uses.
- compile: fast + torch.compile with inductor `freezing` (weights become constants; first call compiles).
- onnxruntime: the ONNX export run by onnxruntime, all graph optimisations on.

Every timed call is one forward pass on a batch of normalised random inputs, including the
conversion to the backend's layout and the copy of the logits back. Rounds go through every
backend and batch size in turn, so the load other processes put on a shared machine hits all
backends alike. Latency p50/p90 per call; throughput = batch / mean latency.
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from seglab.data.size import as_hw
from seglab.engine.device import Runtime, cpu_has_fast_bf16, pick_device, pick_precision
from seglab.export import export_onnx
from seglab.inference.backends import OnnxBackend, TorchBackend

BACKENDS = ("eager", "channels_last", "fast", "compile", "onnxruntime")


@dataclass
class Candidate:
    name: str
    describe: str
    run: Callable[[torch.Tensor], torch.Tensor]
    setup_seconds: float = 0.0
    first_call: dict = field(default_factory=dict)  # batch -> seconds of the first call (compiling)
    times: dict = field(default_factory=dict)  # batch -> list of seconds


def parse_backends(text: str) -> list[str]:
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise ValueError(f"backends={text!r}: expected a comma-separated list of {', '.join(BACKENDS)}")
    return names


def make_candidates(model: nn.Module | None, names: list[str], imgsz, device: str = "auto",
                    threads: int = 0, onnx_path: Path | None = None, workdir: Path | None = None) -> list[Candidate]:
    """The backends to time; `model` None (an .onnx file given) allows only onnxruntime."""
    dev = pick_device(device)
    fast = Runtime(dev, pick_precision("auto", dev), True)
    out = []
    for name in names:
        start = time.perf_counter()
        if model is None and name != "onnxruntime":
            raise ValueError(f"backend {name} needs a PyTorch model (a checkpoint .pt or an architecture name)")
        if name == "eager":
            run, text = TorchBackend(model, Runtime(dev, "fp32", False), fuse=False), "fp32 NCHW"
        elif name == "channels_last":
            run, text = TorchBackend(model, Runtime(dev, "fp32", True), fuse=False), "fp32 channels_last"
        elif name in ("fast", "compile"):
            run = TorchBackend(model, fast, fuse=True, compile=name == "compile")
            text = f"{fast.precision} channels_last, conv+BN folded" + (", torch.compile freezing" if name == "compile" else "")
        else:
            path = onnx_path
            if path is None:
                path = Path(workdir or tempfile.mkdtemp()) / "model.onnx"
                export_onnx(model, path, input_size=as_hw(imgsz))
            run = OnnxBackend(path, threads, metadata={})
            text = f"fp32, ORT_ENABLE_ALL, {run.session.get_session_options().intra_op_num_threads} threads"
        out.append(Candidate(name, text, run, time.perf_counter() - start))
    return out


PAUSE = 0.05  # seconds between timed calls: the previous backend's worker threads stop spinning


def _timed(run, x) -> float:
    time.sleep(PAUSE)
    start = time.perf_counter()
    run(x)
    return time.perf_counter() - start


@torch.no_grad()
def measure(candidates: list[Candidate], batches: list[int], imgsz, repeats: int, seed: int = 0,
            progress: Callable[[str], None] | None = None) -> None:
    """Fill each candidate's first_call and times: one warm-up call, then `repeats` interleaved rounds.

    `imgsz`: the input size, S or (H, W)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {b: torch.randn(b, 3, *as_hw(imgsz), generator=generator) for b in batches}
    for cand in candidates:
        for b in batches:
            cand.first_call[b] = _timed(cand.run, inputs[b])
            cand.times[b] = []
            if progress:
                progress(f"  {cand.name} batch {b}: first call {cand.first_call[b]:.2f} s")
    for _ in range(repeats):
        for b in batches:
            for cand in candidates:
                cand.times[b].append(_timed(cand.run, inputs[b]))


def summarize(candidates: list[Candidate], batches: list[int]) -> list[dict]:
    """One row per (backend, batch): p50/p90 latency (ms), throughput (img/s), speed-up vs eager."""
    rows = []
    for cand in candidates:
        for b in batches:
            t = np.asarray(cand.times[b])
            rows.append({"backend": cand.name, "settings": cand.describe, "batch": b,
                         "p50_ms": float(np.percentile(t, 50) * 1e3), "p90_ms": float(np.percentile(t, 90) * 1e3),
                         "img_per_s": float(b / t.mean()), "runs": len(t),
                         "first_call_s": cand.first_call[b], "setup_s": cand.setup_seconds})
    base = {r["batch"]: r["img_per_s"] for r in rows if r["backend"] == "eager"}
    for row in rows:
        row["speedup_vs_eager"] = row["img_per_s"] / base[row["batch"]] if row["batch"] in base else None
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table of `summarize` rows."""
    lines = ["| backend | settings | batch | p50 ms | p90 ms | img/s | vs eager |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        speedup = f"{r['speedup_vs_eager']:.2f}x" if r["speedup_vs_eager"] else "-"
        lines.append(f"| {r['backend']} | {r['settings']} | {r['batch']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} "
                     f"| {r['img_per_s']:.1f} | {speedup} |")
    return "\n".join(lines)


def machine() -> dict:
    flags = set()
    name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {"cpu": name, "threads": torch.get_num_threads(),
            "isa": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
            "native_bf16": cpu_has_fast_bf16(), "torch": torch.__version__, "onnxruntime": ort_version,
            "python": platform.python_version()}


def lscpu_summary() -> str:
    """lscpu's model name, CPU count and flags (what benchmark output prints so speeds can be compared)."""
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "lscpu not available"
    keep = ("Model name", "CPU(s)", "Flags")
    return "\n".join(line for line in out.splitlines() if line.split(":")[0].strip() in keep)
