"""`seglab export model=RUN/best.pt format=onnx` for instance checkpoints whose model has an ONNX network.

yolo_seg exports its network (`forward_raw`: images -> logits, boxes, coefficients, protos; dynamic
batch, height and width); decoding, NMS and mask assembly run after it (`model.postprocess`), so the
file holds no data-dependent control flow. torchvision's Mask R-CNN has no reliable ONNX export and
is refused with that reason. The file carries task, arch, classes and preprocess as metadata, and is
checked against PyTorch with onnxruntime at the training size and at an odd size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import seglab
from seglab.config import Config
from seglab.data.size import as_hw
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.export.metadata import write_metadata
from seglab.models.instance.onestage_export import OUTPUTS, export_raw_onnx
from seglab.models.source import require, resolve_model

FORMATS = ("onnx",)
TOLERANCE = 1e-3  # max |difference| of any raw output accepted as "the same graph"


def raw_parity(model: torch.nn.Module, path: Path, sizes: list[tuple[int, int]], seed: int = 0) -> dict:
    """{HxW: max |onnxruntime - PyTorch| over the raw outputs} on random normalised inputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    report = {}
    for height, width in sizes:
        x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want = [t.float().numpy() for t in model.forward_raw(x)]
        got = session.run(OUTPUTS, {"images": x.numpy()})
        report[f"{height}x{width}"] = max(float(np.abs(g - w).max()) if g.size else 0.0 for g, w in zip(got, want))
    return report


def onnx_metadata(ckpt: dict) -> dict:
    """What an instance checkpoint tells inference, for the ONNX file: `seglab predict|val model=FILE.onnx`
    rebuild the postprocess from `arch` and read the split from `config` (seglab/inference/instance_onnx.py)."""
    return {"seglab_version": seglab.__version__, "task": "instance", "arch": ckpt["arch"],
            "classes": ckpt["classes"], "preprocess": ckpt["preprocess"], "outputs": OUTPUTS,
            "config": ckpt.get("config", {}), "category_ids": ckpt.get("category_ids"),
            "input": "images: float32 [N, 3, H, W], RGB 0-1, then (x - mean) / std; raw outputs "
                     "decoded by the model's postprocess"}


def export(cfg: Config) -> Path:
    if cfg.format not in FORMATS:
        raise ValueError(f"format={cfg.format!r}: expected one of {', '.join(FORMATS)}")
    checkpoint = require(resolve_model(cfg.model), "export", ("checkpoint",)).path
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt).float().eval()
    if not hasattr(model, "forward_raw"):
        raise ValueError(f"{checkpoint}: {ckpt['arch']['name']} has no ONNX export (torchvision's Mask R-CNN "
                         "does not export reliably); yolo_seg checkpoints export")
    out = Path(cfg.out) if cfg.out else checkpoint.with_suffix(".onnx")
    if out.suffix.lower() != ".onnx":
        out = out / checkpoint.with_suffix(".onnx").name
    size = max(as_hw(ckpt["preprocess"]["size"]))  # the longer side images are resized to
    path = export_raw_onnx(model, out, (size, size), cfg.opset)
    write_metadata(path, onnx_metadata(ckpt))
    report = raw_parity(model, path, [(size, size), (size + 3, max(8, size - 5))])
    if cfg.verbose:
        diffs = ", ".join(f"{k}: {v:.1e}" for k, v in report.items())
        print(f"exported {checkpoint} -> {path} (opset {cfg.opset}, raw outputs {', '.join(OUTPUTS)}, "
              f"{path.stat().st_size / 1e6:.1f} MB)\nonnxruntime vs PyTorch, max |difference|: {diffs}")
        if max(report.values()) > TOLERANCE:
            print(f"warning: onnxruntime differs from PyTorch by more than {TOLERANCE}", flush=True)
    return path
