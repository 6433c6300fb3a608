"""ONNX export of the one-stage model's network (`forward_raw`), with dynamic batch, height and width.

The graph takes `images` [N, 3, H, W] (normalised as `model.normalization` says) and returns
`logits` [N, A, C], `boxes` [N, A, 4], `coefficients` [N, A, k] and `protos` [N, k, h, w], the raw
outputs; decoding, NMS and mask assembly run after it (`model.postprocess` on the outputs as tensors),
so the file holds no data-dependent control flow. It lives here and not in seglab/export because
models may not import the export layer (docs/extending.md, "Layers").
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

OUTPUTS = ["logits", "boxes", "coefficients", "protos"]


class RawNetwork(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        return self.model.forward_raw(images)


def export_raw_onnx(model: nn.Module, path: str | Path, input_size: tuple[int, int] = (256, 256),
                    opset: int = 17) -> Path:
    """Write `model.forward_raw` to `path` as ONNX; the model itself is left untouched. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    network = RawNetwork(copy.deepcopy(model).float().to("cpu", memory_format=torch.contiguous_format)).eval()
    in_channels = next(m for m in network.modules() if isinstance(m, nn.Conv2d)).in_channels
    example = torch.zeros(1, in_channels, *input_size)
    per_location = {0: "batch", 1: "locations"}
    axes = {"images": {0: "batch", 2: "height", 3: "width"}, "logits": per_location, "boxes": per_location,
            "coefficients": per_location, "protos": {0: "batch", 2: "proto_height", 3: "proto_width"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(network, (example,), str(path), dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=OUTPUTS, dynamic_axes=axes, do_constant_folding=True)
    return path
