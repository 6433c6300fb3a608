"""A checkpoint's network alone (`model.forward_raw`) as ONNX, for the tasks whose outputs need decoding after it.

Instance (yolo_seg, maskformer_instance) and panoptic (panoptic_deeplab, maskformer) models split inference in
two: `forward_raw(images)` returns plain tensors and traces to ONNX, and `postprocess(raw, size)` (decoding, NMS,
grouping: data-dependent control flow) runs in torch after it, on PyTorch's or onnxruntime's outputs alike
(seglab/inference/raw_onnx.py). This writes the first part:
- the graph takes `images` [N, 3, H, W] (normalised as the checkpoint's preprocess says) and its outputs are
  named by the model's declared `raw_outputs`, else raw0, raw1, ...;
- batch is dynamic, and so is every output dimension that changes with the input size (found by running
  forward_raw at two sizes), so one file serves any image size;
- `raw_parity` checks the file against PyTorch with onnxruntime; `export_network` is `seglab export` for such a
  checkpoint (the tasks add their metadata and refusals): the graph at the training size, the metadata, parity
  at the training size and an odd size.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import seglab
from seglab.data.size import as_hw
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.export.metadata import write_metadata
from seglab.models.source import require, resolve_model

FORMATS = ("onnx",)
TOLERANCE = 1e-3  # max |difference| of any raw output accepted as "the same graph"
INPUT = "images: float32 [N, 3, H, W], RGB 0-1, then (x - mean) / std"


class RawNetwork(nn.Module):
    """`forward` is the wrapped model's `forward_raw` (what the exporter traces)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        return tuple(self.model.forward_raw(images))


def _shapes(model: nn.Module, size: tuple[int, int]) -> list[tuple[int, ...]]:
    with torch.no_grad():
        return [tuple(t.shape) for t in model.forward_raw(torch.zeros(1, 3, *size))]


def output_names(model: nn.Module, count: int) -> list[str]:
    """The model's declared `raw_outputs` names (if it declares one per output), else raw0, raw1, ..."""
    declared = list(getattr(model, "raw_outputs", None) or [])
    return declared if len(declared) == count else [f"raw{i}" for i in range(count)]


def dynamic_axes(model: nn.Module, size: tuple[int, int]) -> tuple[list[str], dict]:
    """(output names, dynamic_axes): batch everywhere, height and width of the input, and each output
    dimension that differs between forward_raw at `size` and at a size one `multiple` larger."""
    multiple = int(getattr(model, "multiple", 1))
    larger = tuple(s + max(multiple, 8) for s in size)
    shapes, other = _shapes(model, size), _shapes(model, larger)
    names = output_names(model, len(shapes))
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    for name, a, b in zip(names, shapes, other):
        axes[name] = {0: "batch", **{d: f"{name}_{d}" for d in range(1, len(a)) if a[d] != b[d]}}
    return names, axes


def export_raw_onnx(model: nn.Module, path: str | Path, size: tuple[int, int] = (256, 256), opset: int = 17) -> list[str]:
    """Write `model.forward_raw` to `path` as ONNX (traced at `size`); the model itself is left untouched.
    Returns the output names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).float().to("cpu", memory_format=torch.contiguous_format).eval()
    names, axes = dynamic_axes(model, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")  # F.pad's reversed pads
        torch.onnx.export(RawNetwork(model), (torch.zeros(1, 3, *size),), str(path), dynamo=False,
                          opset_version=opset, input_names=["images"], output_names=names, dynamic_axes=axes,
                          do_constant_folding=True)
    return names


def raw_parity(model: nn.Module, path: str | Path, sizes: list[tuple[int, int]], seed: int = 0) -> dict:
    """{HxW: max |onnxruntime - PyTorch| over the raw outputs} on random normalised inputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    report = {}
    for height, width in sizes:
        x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            want = [t.float().numpy() for t in model.forward_raw(x)]
        got = session.run(names, {"images": x.numpy()})
        report[f"{height}x{width}"] = max(float(np.abs(g - w).max()) if g.size else 0.0 for g, w in zip(got, want))
    return report


def network_metadata(ckpt: dict, names: list[str], after: str) -> dict:
    """What every raw-network file carries: `seglab predict|val model=FILE.onnx` rebuild the postprocess from
    `arch` (seglab/inference/raw_onnx.py) and read the split from `config`. `after`: what runs on the outputs."""
    return {"seglab_version": seglab.__version__, "task": ckpt["task"], "arch": ckpt["arch"],
            "classes": ckpt["classes"], "category_ids": ckpt.get("category_ids"), "preprocess": ckpt["preprocess"],
            "config": ckpt.get("config", {}), "calibration": ckpt.get("calibration"), "outputs": names,
            "input": f"{INPUT}; raw outputs {after}"}


def export_size(ckpt: dict, model: nn.Module) -> int:
    """The training size's longer side, rounded up to the model's `multiple` (the square traced)."""
    size = max(as_hw(ckpt["preprocess"]["size"]))
    return size + (-size % int(getattr(model, "multiple", 1)))


def output_path(out: str, checkpoint: Path) -> Path:
    """out= (a .onnx file, or a folder to write CHECKPOINT.onnx into), else next to the checkpoint."""
    path = Path(out) if out else checkpoint.with_suffix(".onnx")
    return path if path.suffix.lower() == ".onnx" else path / checkpoint.with_suffix(".onnx").name


def no_refusal(checkpoint: Path, ckpt: dict) -> None:
    """A task with nothing it refuses to export beyond models without forward_raw."""


def export_network(model: str, out: str, fmt: str, opset: int, metadata: Callable[[dict, list[str]], dict],
                   refuse: Callable[[Path, dict], None] = no_refusal) -> tuple[Path, str]:
    """`seglab export` of a checkpoint with `forward_raw` and `postprocess` (model=, out=, format=, opset=):
    `metadata(ckpt, output names)` is the task's ONNX metadata, `refuse(path, ckpt)` raises for a checkpoint the
    task cannot export. Returns (the .onnx path, what was written and its parity, in words)."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: expected one of {', '.join(FORMATS)}")
    checkpoint = require(resolve_model(model), "export", ("checkpoint",)).path
    ckpt = load_checkpoint(checkpoint)
    refuse(checkpoint, ckpt)
    network = model_from_checkpoint(ckpt).float().eval()
    if not (hasattr(network, "forward_raw") and hasattr(network, "postprocess")):
        raise ValueError(f"{checkpoint}: {ckpt['arch']['name']} has no ONNX export (no forward_raw + postprocess "
                         "to split its network from its decoding)")
    path, size = output_path(out, checkpoint), export_size(ckpt, network)
    names = export_raw_onnx(network, path, (size, size), opset)
    write_metadata(path, metadata(ckpt, names))
    report = raw_parity(network, path, [(size, size), (size + 3, max(8, size - 5))])
    diffs = ", ".join(f"{k}: {v:.1e}" for k, v in report.items())
    summary = (f"exported {checkpoint} -> {path} (opset {opset}, raw outputs {', '.join(names)}, "
               f"{path.stat().st_size / 1e6:.1f} MB)\nonnxruntime vs PyTorch, max |difference|: {diffs}")
    if max(report.values()) > TOLERANCE:
        summary += f"\nwarning: onnxruntime differs from PyTorch by more than {TOLERANCE}"
    return path, summary
