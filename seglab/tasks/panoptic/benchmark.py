"""`seglab benchmark task=panoptic model=panoptic_deeplab|CHECKPOINT.pt imgsz=256`: panoptic inference latency.

Two stages per backend, timed in interleaved rounds after a warm-up (seglab/benchmark/timing.py), batch 1:
- predict: `PanopticPredictor.predict_view` on an imgsz model view (normalisation, padding, network, grouping,
  segments at the view's size): what `seglab predict` pays per decoded, resized image;
- network: `forward_raw` alone (what ONNX exports).
Backends: eager (fp32 NCHW), channels_last (fp32), fast (precision=auto, channels_last: what predict runs) and
onnxruntime (the exported network; predict then groups its outputs with the model's own postprocess).
An architecture name builds the model with random weights (seed=), classes background (stuff) + object
(thing) and the config's model arguments; a checkpoint brings its own. Writes
<out or project/benchmark>/benchmark_<model>_<imgsz>.json.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import torch

from seglab.benchmark.report import (
    describe_load,
    describe_machine,
    load_average,
    result_path,
)
from seglab.benchmark.timing import Candidate, machine, measure, summarize, table
from seglab.config import Config
from seglab.data.size import as_hw, size_text
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.engine.device import Runtime, pick_device, pick_precision
from seglab.engine.run_folder import write_json
from seglab.export.raw_network import export_raw_onnx
from seglab.inference.backends import session_options
from seglab.inference.instance import RESIZE
from seglab.inference.panoptic import PanopticPredictor, at_size
from seglab.models import build_model, model_arguments
from seglab.models.source import resolve_model
from seglab.tasks.panoptic.predictors import names_parts

BACKENDS = ("eager", "channels_last", "fast", "onnxruntime")
STAGES = {"predict": "network + grouping into segments", "network": "forward_raw alone"}
RANDOM_CLASSES = (["background", "object"], [False, True])


def runtime_of(backend: str, device: str) -> Runtime:
    dev = pick_device(device)
    return {"eager": Runtime(dev, "fp32", False), "channels_last": Runtime(dev, "fp32", True),
            "fast": Runtime(dev, pick_precision("auto", dev), True),
            "onnxruntime": Runtime(torch.device("cpu"), "fp32", False)}[backend]


def model_and_metadata(cfg: Config) -> tuple[torch.nn.Module, dict]:
    source = resolve_model(cfg.model)
    if source.kind == "checkpoint":
        ckpt = load_checkpoint(source.path)
        return model_from_checkpoint(ckpt), ckpt
    if source.kind != "architecture":
        raise ValueError(f"model={cfg.model}: panoptic benchmark takes an architecture name or a checkpoint")
    names, is_thing = RANDOM_CLASSES
    options = {k: v for k, v in cfg.to_dict().items() if v is not None}
    args = {**model_arguments(source.name, len(names), {**options, "encoder_weights": ""}), "is_thing": is_thing}
    torch.manual_seed(cfg.seed)
    model = build_model(source.name, args, pretrained=False).eval()
    return model, {"task": "panoptic", "arch": {"name": source.name, "args": args},
                   "classes": ClassTable(names, [(128, 128, 128), (255, 0, 0)]).to_dict(), "is_thing": is_thing,
                   "preprocess": {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                                  "resize": RESIZE, "size": max(as_hw(cfg.imgsz))}}


def pixels(x: torch.Tensor) -> torch.Tensor:
    """A normalised random batch [1, 3, H, W] -> a uint8 model view [3, H, W] (the predictor normalises it)."""
    return (x[0] * 64 + 128).clamp(0, 255).to(torch.uint8)


def torch_stages(predictor: PanopticPredictor) -> tuple:
    runtime, model = predictor.runtime, predictor.model

    def alone(x: torch.Tensor):
        with torch.no_grad(), runtime.autocast():
            return model.forward_raw(x.to(runtime.device).contiguous(memory_format=runtime.memory_format))

    return (lambda x: predictor.predict_view(pixels(x), tuple(x.shape[-2:]))), alone


def onnx_stages(model: torch.nn.Module, path: Path, names: list[str], threads: int) -> tuple:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])

    def alone(x: torch.Tensor):
        return session.run(names, {"images": x.float().numpy()})

    def whole(x: torch.Tensor):
        raw = [torch.from_numpy(r) for r in alone(x)]
        out = model.postprocess(raw, tuple(x.shape[-2:]))[0]
        return at_size(out["segment_ids"].cpu().numpy(), out["segments"], tuple(x.shape[-2:]))

    return whole, alone


def benchmark(cfg: Config) -> dict:
    if names_parts(cfg):
        raise ValueError("a fusion has no network of its own: benchmark its two checkpoints (model=SEMANTIC.pt, "
                         "model=INSTANCE.pt)")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    names = [n.strip() for n in cfg.backends.split(",") if n.strip() in BACKENDS] or list(BACKENDS)
    model, metadata = model_and_metadata(cfg)
    say = print if cfg.verbose else (lambda *_: None)
    start, load_before = time.perf_counter(), load_average()
    candidates: dict[str, list[Candidate]] = {stage: [] for stage in STAGES}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            runtime = runtime_of(name, cfg.device)
            if name == "onnxruntime":
                path = Path(tmp) / "model.onnx"
                outputs = export_raw_onnx(model, path, as_hw(cfg.imgsz), cfg.opset)
                stages = onnx_stages(copy.deepcopy(model).float().cpu().eval(), path, outputs, cfg.threads)
                settings = f"fp32, ORT_ENABLE_ALL, {cfg.threads or torch.get_num_threads()} threads, grouping in torch"
            else:
                predictor = PanopticPredictor(runtime.prepare_model(copy.deepcopy(model)), runtime, metadata)
                stages = torch_stages(predictor)
                settings = f"{runtime.precision} {'channels_last' if runtime.channels_last else 'NCHW'}"
            for stage, run in zip(STAGES, stages):
                candidates[stage].append(Candidate(name, settings, run))
        say(describe_machine(machine()))
        say(f"benchmark {cfg.model} at {size_text(cfg.imgsz)}, batch 1, {cfg.repeats} interleaved rounds, "
            f"{torch.get_num_threads()} threads")
        measure([c for stage in candidates.values() for c in stage], [1], cfg.imgsz, cfg.repeats, cfg.seed,
                progress=say)
    rows = [{"stage": stage, **row} for stage, cands in candidates.items() for row in summarize(cands, [1])]
    result = {"model": cfg.model, "arch": metadata["arch"], "imgsz": cfg.imgsz, "batches": [1],
              "repeats": cfg.repeats, "stages": STAGES, "machine": machine(),
              "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
              "load_average": {"before": load_before, "after": load_average()}, "results": rows,
              "seconds": time.perf_counter() - start}
    path = result_path(cfg.out, cfg.project, cfg.model, cfg.imgsz)
    write_json(path, result)
    for stage, text in STAGES.items():
        say(f"\n{stage}: {text}")
        say(table([r for r in rows if r["stage"] == stage]))
    say(describe_load(load_before, result["load_average"]["after"]))
    say(f"written: {path}")
    return result
