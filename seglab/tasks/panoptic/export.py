"""`seglab export model=RUN/best.pt format=onnx` for panoptic checkpoints: the network (`model.forward_raw`) as ONNX.

The grouping (centres, offsets, segments) stays in torch after the network (`model.postprocess`), so the file
holds no data-dependent control flow. The file carries task, arch, classes, is_thing, category ids, preprocess
and the names of its outputs as metadata, and is checked against PyTorch with onnxruntime at the training size
and at an odd size. A fusion has no network of its own: export its two checkpoints.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import seglab
from seglab.config import Config
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.export.metadata import write_metadata
from seglab.models.source import require, resolve_model
from seglab.tasks.panoptic.predictors import names_parts

FORMATS = ("onnx",)
TOLERANCE = 1e-3  # max |difference| of any raw output accepted as "the same graph"


class RawNetwork(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        return tuple(self.model.forward_raw(images))


def output_names(model: nn.Module, size: tuple[int, int]) -> tuple[list[str], list[int]]:
    """(names, ranks) of what forward_raw returns: the model's declared `raw_outputs` names, else raw0, raw1, ..."""
    with torch.no_grad():
        ranks = [t.dim() for t in model.forward_raw(torch.zeros(1, 3, *size))]
    declared = list(getattr(model, "raw_outputs", None) or [])
    return (declared if len(declared) == len(ranks) else [f"raw{i}" for i in range(len(ranks))]), ranks


def export_raw_onnx(model: nn.Module, path: Path, size: tuple[int, int], opset: int) -> list[str]:
    """Write `model.forward_raw` to `path` (dynamic batch, height, width); returns the output names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).float().to("cpu", memory_format=torch.contiguous_format).eval()
    names, ranks = output_names(model, size)
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    axes.update({n: {0: "batch", **{d: f"{n}_{d}" for d in range(2, rank)}} for n, rank in zip(names, ranks)})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(RawNetwork(model), (torch.zeros(1, 3, *size),), str(path), dynamo=False,
                          opset_version=opset, input_names=["images"], output_names=names, dynamic_axes=axes,
                          do_constant_folding=True)
    return names


def raw_parity(model: nn.Module, path: Path, names: list[str], sizes: list[tuple[int, int]], seed: int = 0) -> dict:
    """{HxW: max |onnxruntime - PyTorch| over the raw outputs} on random normalised inputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    report = {}
    for height, width in sizes:
        x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want = [t.float().numpy() for t in model.forward_raw(x)]
        got = session.run(names, {"images": x.numpy()})
        report[f"{height}x{width}"] = max(float(np.abs(g - w).max()) if g.size else 0.0 for g, w in zip(got, want))
    return report


def onnx_metadata(ckpt: dict, names: list[str]) -> dict:
    return {"seglab_version": seglab.__version__, "task": "panoptic", "arch": ckpt["arch"], "classes": ckpt["classes"],
            "is_thing": ckpt["is_thing"], "category_ids": ckpt.get("category_ids"), "preprocess": ckpt["preprocess"],
            "outputs": names, "input": "images: float32 [N, 3, H, W], RGB 0-1, then (x - mean) / std; raw outputs "
                                       "grouped into segments by the model's postprocess"}


def export(cfg: Config) -> Path:
    if cfg.format not in FORMATS:
        raise ValueError(f"format={cfg.format!r}: expected one of {', '.join(FORMATS)}")
    if names_parts(cfg):
        raise ValueError("a fusion has no network of its own: export its parts, `seglab export "
                         "model=SEMANTIC.pt` and `seglab export model=INSTANCE.pt`")
    checkpoint = require(resolve_model(cfg.model), "export", ("checkpoint",)).path
    ckpt = load_checkpoint(checkpoint)
    if "fusion" in ckpt:
        raise ValueError(f"{checkpoint}: a fusion of {ckpt['fusion']['semantic_model']} and "
                         f"{ckpt['fusion']['instance_model']}; export those two checkpoints")
    model = model_from_checkpoint(ckpt).float().eval()
    out = Path(cfg.out) if cfg.out else checkpoint.with_suffix(".onnx")
    if out.suffix.lower() != ".onnx":
        out = out / checkpoint.with_suffix(".onnx").name
    multiple = int(getattr(model, "multiple", 1))
    size = int(ckpt["preprocess"]["size"])
    size = size + (-size % multiple)
    names = export_raw_onnx(model, out, (size, size), cfg.opset)
    write_metadata(out, onnx_metadata(ckpt, names))
    report = raw_parity(model, out, names, [(size, size), (size + 3, max(8, size - 5))])
    if cfg.verbose:
        diffs = ", ".join(f"{k}: {v:.1e}" for k, v in report.items())
        print(f"exported {checkpoint} -> {out} (opset {cfg.opset}, raw outputs {', '.join(names)}, "
              f"{out.stat().st_size / 1e6:.1f} MB)\nonnxruntime vs PyTorch, max |difference|: {diffs}")
        if max(report.values()) > TOLERANCE:
            print(f"warning: onnxruntime differs from PyTorch by more than {TOLERANCE}", flush=True)
    return out
