"""`seglab benchmark model=NAME|CHECKPOINT.pt|FILE.onnx imgsz=256 batch=8`: inference latency and throughput.

Times batch 1 and batch `batch` on each of `backends` (seglab/benchmark/timing.py), prints a
Markdown table and writes <out or project/benchmark>/benchmark_<model>_<imgsz>.json. An architecture
name builds that model with the config's model arguments (width=, depth=, encoder=, ...), random
weights and 3 classes; a checkpoint brings its own.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from seglab.config import Config
from seglab.data.size import size_text
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.engine.run_folder import write_json
from seglab.benchmark.report import describe_load, load_average, result_path
from seglab.benchmark.timing import make_candidates, machine, measure, parse_backends, summarize, table
from seglab.models import DEFAULT_MODELS, build_model, model_arguments
from seglab.models.source import resolve_model

NUM_CLASSES = 3


def _model(cfg: Config) -> tuple[torch.nn.Module | None, dict]:
    source = resolve_model(cfg.model or DEFAULT_MODELS["semantic"])
    if source.kind == "onnx":
        return None, {"model": source.name}
    if source.kind == "checkpoint":
        ckpt = load_checkpoint(source.path)
        return model_from_checkpoint(ckpt), {"model": source.name, "arch": ckpt["arch"]}
    args = model_arguments(source.name, NUM_CLASSES, {**cfg.to_dict(), "encoder_weights": ""})
    torch.manual_seed(cfg.seed)
    model = build_model(source.name, args, pretrained=False).eval()
    return model, {"model": source.name, "arch": {"name": source.name, "args": args}}


def benchmark(cfg: Config) -> dict:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    names = parse_backends(cfg.backends)
    model, about = _model(cfg)
    if model is None:
        names = [n for n in names if n == "onnxruntime"] or ["onnxruntime"]
    if model is not None:
        about["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
    batches = sorted({1, cfg.batch})
    say = print if cfg.verbose else (lambda *_: None)
    start, load_before = time.perf_counter(), load_average()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(about["model"]) if model is None else None
        candidates = make_candidates(model, names, cfg.imgsz, cfg.device, cfg.threads, onnx_path, Path(tmp))
        say(f"benchmark {about['model']} at {size_text(cfg.imgsz)}, batches {batches}, {cfg.repeats} interleaved "
            f"rounds, {torch.get_num_threads()} threads")
        measure(candidates, batches, cfg.imgsz, cfg.repeats, cfg.seed, progress=say)
    rows = summarize(candidates, batches)
    result = {**about, "imgsz": cfg.imgsz, "batches": batches, "repeats": cfg.repeats, "machine": machine(),
              "load_average": {"before": load_before, "after": load_average()}, "results": rows,
              "seconds": time.perf_counter() - start}
    path = result_path(cfg.out, cfg.project, about["model"], cfg.imgsz)
    write_json(path, result)
    say(table(rows))
    say(describe_load(load_before, result["load_average"]["after"]))
    say(f"written: {path}")
    return result
