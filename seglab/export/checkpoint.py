"""A checkpoint as a self-describing ONNX file, checked against PyTorch after export.

`seglab/export/onnx.py` writes the graph, `seglab/export/metadata.py` its metadata (dynamic batch, height and width). This adds what
`seglab predict model=x.onnx` needs as metadata_props (JSON values): `classes` (names, colours,
ignore index), `preprocess` (mean, std in 0-1 units, resize policy, training size), `class_names`,
`normalization`, `arch`, `seglab_version`, the input contract in words, and `input_multiple` /
`pad_mode`: graphs that only run at multiples of some size (their padding was fixed when traced)
get their input padded by the ONNX backend, as the PyTorch model pads itself. Those two are found
by running the graph: the smallest multiple whose outputs match PyTorch, and the padding (reflect
or replicate) that reproduces PyTorch at an odd size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import seglab
from seglab.data.size import as_hw, canonical
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.export.metadata import write_metadata
from seglab.export.onnx import export_onnx
from seglab.inference.backends import OnnxBackend

INPUT = "images: float32 [N, 3, H, W], RGB scaled to 0-1, then (x - mean) / std; output logits [N, C, H, W]"
TOLERANCE = 1e-3  # max |logit difference| accepted as "the same graph" while probing


def export_checkpoint(checkpoint: str | Path, path: str | Path | None = None, opset: int = 17) -> tuple[Path, dict]:
    """Write `checkpoint` as ONNX (default: next to it, .onnx); returns (path, report of the checks)."""
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt).float().eval()
    height, width = as_hw(ckpt["preprocess"]["size"])
    path = Path(path) if path else Path(checkpoint).with_suffix(".onnx")
    classes = ckpt["classes"]
    metadata = {"seglab_version": seglab.__version__, "task": ckpt.get("task", "semantic"), "arch": ckpt["arch"], "classes": classes,
                "preprocess": ckpt["preprocess"], "class_names": classes["names"],
                "normalization": {"mean": ckpt["preprocess"]["mean"], "std": ckpt["preprocess"]["std"]},
                "input": INPUT}
    export_onnx(model, path, input_size=(height, width), opset=opset, metadata=metadata)
    rule, report = probe_input_rule(model, path, (height, width))
    write_metadata(path, rule)
    return path, {**report, **rule, "export_size": canonical((height, width))}


@torch.no_grad()
def _max_diff(model, backend: OnnxBackend, height: int, width: int, seed: int = 0) -> float:
    x = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(seed))
    try:
        got = backend(x)
    except Exception:  # onnxruntime refuses shapes its fixed padding cannot take
        return float("inf")
    want = model(x)
    return float((got - want).abs().max()) if got.shape == want.shape else float("inf")


def probe_input_rule(model: torch.nn.Module, path: Path, size) -> tuple[dict, dict]:
    """({input_multiple, pad_mode}, {HxW: max |logit difference| vs PyTorch}) for an exported file;
    `size` is the export size, S or (H, W)."""
    backend = OnnxBackend(path, metadata={}, quiet=True)
    height, width = as_hw(size)
    odd = (height + 1, width + 3)
    report = {f"{height}x{width}": _max_diff(model, backend, height, width)}
    diff = _max_diff(model, backend, *odd)
    rule = {"input_multiple": 1, "pad_mode": "replicate"}
    if diff > TOLERANCE:
        for multiple in (2, 4, 8, 16, 32, 64, 128):
            h, w = multiple * (height // multiple + 1), multiple * (width // multiple + 2)
            if _max_diff(model, backend, h, w) <= TOLERANCE:
                rule["input_multiple"] = multiple
                break
        if rule["input_multiple"] > 1:
            tries = {}
            for mode in ("reflect", "replicate"):
                backend.multiple, backend.pad_mode = rule["input_multiple"], mode
                tries[mode] = _max_diff(model, backend, *odd)
            rule["pad_mode"] = min(tries, key=tries.get)
            diff = tries[rule["pad_mode"]]
    report[f"{odd[0]}x{odd[1]}"] = diff
    return rule, {"max_abs_diff": report}


def labels_agree(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.asarray(a) == np.asarray(b)).mean())
