"""ONNX export with dynamic batch, height and width (torch's TorchScript-based exporter, `dynamo=False`).

The graph takes `images` [N, C, H, W] (already normalised as the model's `normalization` says) and
returns `logits` [N, classes, H, W]. `metadata` (e.g. class names, normalisation) is written into the
file's metadata_props as strings (JSON for anything but a string), which needs the `onnx` package.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from seglab.export.metadata import write_metadata


def export_onnx(model: nn.Module, path: str | Path, input_size: tuple[int, int] = (256, 256), opset: int = 17,
                metadata: dict | None = None) -> Path:
    """Write `model` to `path` as ONNX; returns the path. The model itself is left untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).float().to("cpu", memory_format=torch.contiguous_format).eval()
    in_channels = _in_channels(model)
    example = torch.zeros(1, in_channels, *input_size)
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")  # F.pad's reversed pads
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": axes, "logits": axes}, do_constant_folding=True)
    if metadata:
        write_metadata(path, metadata)
    return path


def _in_channels(model: nn.Module) -> int:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError("export_onnx: the model has no Conv2d to read its input channels from")
    return conv.in_channels
