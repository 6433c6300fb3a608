"""`seglab benchmark model=yolo_seg|maskrcnn|CHECKPOINT.pt|FILE.onnx imgsz=512`: instance inference latency.

Two stages per backend, timed in interleaved rounds after a warm-up (seglab/benchmark/timing.py):
- predict: what `seglab predict` pays per image once it is decoded and resized: `InstancePredictor.predict_view`
  on an imgsz model view (normalisation, network, decoding + NMS, mask assembly, masks resized and
  painted into the id map), the one path val and predict run;
- network: the network alone, the part without data-dependent steps: `forward_raw` (yolo_seg, ONNX),
  else the backbone + FPN (Mask R-CNN: its RPN and heads run on the proposals it keeps).
Batch 1: instance inference runs one image at a time. Backends: eager (fp32 NCHW), channels_last
(fp32), fast (what predict runs: precision=auto, channels_last) and onnxruntime (the exported network
+ the model's own postprocess, seglab/inference/instance_onnx.py; models with an ONNX export only).

An architecture name builds the model with random weights (seed=), one class and the config's model
arguments; a checkpoint brings its own, an .onnx file times onnxruntime alone. Mask work grows with
the detections kept, which random weights leave to chance: each row records them, and
`score_threshold=0 max_detections=100` gives every model the same count. Writes
<out or project/benchmark>/benchmark_<model>_<imgsz>.json with the machine's CPU flags.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from seglab.benchmark.report import describe_load, describe_machine, load_average, result_path
from seglab.benchmark.timing import Candidate, machine, measure, parse_backends, summarize, table
from seglab.config import Config, given_keys
from seglab.data.size import as_hw, size_text
from seglab.engine.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint
from seglab.engine.device import Runtime, pick_device, pick_precision
from seglab.engine.run_folder import write_json
from seglab.export.metadata import write_metadata
from seglab.export.raw_network import export_raw_onnx
from seglab.inference.instance import InstanceOptions, InstancePredictor, RESIZE
from seglab.models import build_model, model_arguments
from seglab.models.padding import pad_to_multiple
from seglab.models.source import resolve_model
from seglab.tasks.instance.export import onnx_metadata
from seglab.tasks.instance.train import thing_classes

BACKENDS = ("eager", "channels_last", "fast", "onnxruntime")  # compile: NMS and per-mask loops break its graph
NETWORK_PARTS = ("forward_raw", "backbone")  # the first a model has is its network alone
STAGES = {"predict": "network + decoding, NMS, mask assembly, id map", "network": "the network alone"}


def runtime_of(backend: str, device: str) -> Runtime:
    dev = pick_device(device)
    return {"eager": Runtime(dev, "fp32", False), "channels_last": Runtime(dev, "fp32", True),
            "fast": Runtime(dev, pick_precision("auto", dev), True),
            "onnxruntime": Runtime(torch.device("cpu"), "fp32", False)}[backend]


def random_checkpoint(cfg: Config, name: str, folder: Path) -> Path:
    """An architecture with random weights (seed=) and one class, saved as an instance checkpoint."""
    options = {k: v for k, v in cfg.to_dict().items() if v is not None}  # null keys: the model's default
    args = model_arguments(name, 1, {**options, "encoder_weights": ""})
    torch.manual_seed(cfg.seed)
    model = build_model(name, args, pretrained=False).eval()
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": RESIZE, "size": max(as_hw(cfg.imgsz))}
    ckpt = make_checkpoint(model, {"name": name, "args": args}, thing_classes(["object"]), preprocess,
                           cfg.to_dict(), 0, {}, task="instance")
    torch.save(ckpt, folder / f"{name}.pt")
    return folder / f"{name}.pt"


def exported(checkpoint: Path, imgsz, folder: Path) -> Path | None:
    """The checkpoint's network as ONNX with the metadata `seglab export` writes; None if it has no export."""
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt).float().eval()
    if not hasattr(model, "forward_raw"):
        return None
    path = folder / f"{checkpoint.stem}.onnx"
    write_metadata(path, onnx_metadata(ckpt, export_raw_onnx(model, path, as_hw(imgsz))))
    return path


def pixels(x: torch.Tensor) -> torch.Tensor:
    """A normalised random batch [1, 3, H, W] -> a uint8 model view [3, H, W] (the predictor normalises it)."""
    return (x[0] * 64 + 128).clamp(0, 255).to(torch.uint8)


def network_part(model) -> str:
    """The name of the model's network alone (NETWORK_PARTS)."""
    part = next((p for p in NETWORK_PARTS if hasattr(model, p)), None)
    if part is None:
        raise ValueError(f"{type(model).__name__} has none of {', '.join(NETWORK_PARTS)} to time as its network")
    return part


def stage_candidates(backend: str, predictor: InstancePredictor, settings: str) -> tuple[Candidate, Candidate]:
    """(predict, network) for one backend; each is called with a normalised random batch of one."""
    runtime, model = predictor.runtime, predictor.model
    network, multiple = getattr(model, network_part(model)), int(getattr(model, "multiple", 1))

    def whole(x: torch.Tensor):
        return predictor.predict_view(pixels(x), tuple(x.shape[-2:]))

    def alone(x: torch.Tensor):
        x = pad_to_multiple(x, multiple, mode="constant", skip_empty=True)
        with runtime.autocast():
            return network(x.to(runtime.device).contiguous(memory_format=runtime.memory_format))

    return Candidate(backend, settings, whole), Candidate(backend, settings, alone)


def settings_of(backend: str, runtime: Runtime, threads: int) -> str:
    if backend == "onnxruntime":
        return f"fp32, ORT_ENABLE_ALL, {threads or torch.get_num_threads()} threads, postprocess in PyTorch"
    return f"{runtime.precision} {'channels_last' if runtime.channels_last else 'NCHW'}"


def pick_backends(cfg: Config, kind: str) -> list[str]:
    given = "backends" in given_keys(cfg)
    names = parse_backends(cfg.backends) if given else list(BACKENDS)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ValueError(f"backends={cfg.backends!r}: instance models time {', '.join(BACKENDS)} "
                         f"({', '.join(unknown)} not: NMS and per-detection mask loops break a compiled graph)")
    if kind == "onnx":
        if given and names != ["onnxruntime"]:
            raise ValueError(f"model={cfg.model}: an .onnx file runs on onnxruntime only (backends={cfg.backends!r})")
        return ["onnxruntime"]
    return names


def model_files(cfg: Config, source, names: list[str], folder: Path) -> tuple[Path, Path | None, list[str]]:
    """(the checkpoint or .onnx to time, the .onnx for onnxruntime or None, notes); drops onnxruntime from
    `names` when the model has no export and the backends were not given."""
    path = random_checkpoint(cfg, source.name, folder) if source.kind == "architecture" else source.path
    if source.kind == "onnx" or "onnxruntime" not in names:
        return path, path if source.kind == "onnx" else None, []
    onnx_path = exported(path, cfg.imgsz, folder)
    if onnx_path is not None:
        return path, onnx_path, []
    if "backends" in given_keys(cfg):
        raise ValueError(f"model={cfg.model}: backends=onnxruntime needs an ONNX export, which this model lacks "
                         "(yolo_seg has one, Mask R-CNN not)")
    names.remove("onnxruntime")
    return path, None, ["onnxruntime left out: this model has no ONNX export"]


def benchmark(cfg: Config) -> dict:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    source = resolve_model(cfg.model)
    names = pick_backends(cfg, source.kind)
    options = InstanceOptions.from_config(cfg, given_keys(cfg))
    say = print if cfg.verbose else (lambda *_: None)
    start, load_before = time.perf_counter(), load_average()
    about = {"model": source.name}
    candidates: dict[str, list[Candidate]] = {stage: [] for stage in STAGES}
    detections = {}
    probe = torch.randn(1, 3, *as_hw(cfg.imgsz), generator=torch.Generator().manual_seed(cfg.seed))
    with tempfile.TemporaryDirectory() as tmp:
        path, onnx_path, notes = model_files(cfg, source, names, Path(tmp))
        for name in names:
            runtime, built = runtime_of(name, cfg.device), time.perf_counter()
            predictor = InstancePredictor(onnx_path if name == "onnxruntime" else path, runtime, options)
            built = time.perf_counter() - built
            about.update(arch=predictor.checkpoint["arch"], network=network_part(predictor.model))
            if name != "onnxruntime":
                about["params_m"] = sum(p.numel() for p in predictor.model.parameters()) / 1e6
            with torch.no_grad():
                detections[name] = len(predictor.detect(pixels(probe))["scores"])
            for stage, cand in zip(STAGES, stage_candidates(name, predictor, settings_of(name, runtime, cfg.threads))):
                cand.setup_seconds = built
                candidates[stage].append(cand)
        say(describe_machine(machine()))
        say(f"benchmark {source.name} at {size_text(cfg.imgsz)}, batch 1, {cfg.repeats} interleaved rounds, "
            f"{torch.get_num_threads()} threads; {predictor.describe()}" + "".join(f"; {n}" for n in notes))
        measure([c for stage in candidates.values() for c in stage], [1], cfg.imgsz, cfg.repeats, cfg.seed,
                progress=say)
    rows = [{"stage": stage, **row, **({"detections": detections[row["backend"]]} if stage == "predict" else {})}
            for stage, cands in candidates.items() for row in summarize(cands, [1])]
    result = {**about, "imgsz": cfg.imgsz, "batches": [1], "repeats": cfg.repeats, "stages": STAGES,
              "options": {"score_threshold": predictor.options.score_threshold,
                          "max_detections": predictor.options.max_detections},
              "notes": notes, "machine": machine(),
              "load_average": {"before": load_before, "after": load_average()}, "results": rows,
              "seconds": time.perf_counter() - start}
    path = result_path(cfg.out, cfg.project, about["model"], cfg.imgsz)
    write_json(path, result)
    for stage, text in STAGES.items():
        more = f"; detections per image: {detections}" if stage == "predict" else f" ({about['network']})"
        say(f"\n{stage}: {text}{more}")
        say(table([r for r in rows if r["stage"] == stage]))
    say(describe_load(load_before, result["load_average"]["after"]))
    say(f"written: {path}")
    return result
