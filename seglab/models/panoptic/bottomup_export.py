"""ONNX export of the bottom-up panoptic network (`forward_raw`), with dynamic batch, height and width.

The graph takes `images` [N, 3, H, W] (normalised as `model.normalization` says; any H, W: the graph pads to
`model.multiple` itself) and returns `semantic` [N, C, h, w], `heatmap` [N, 1, h, w] and `offsets`
[N, 2, h, w] at `model.output_stride` of the padded input; the grouping runs after it (`model.postprocess`
on the outputs as tensors), so the file holds no data-dependent control flow. It lives here and not in
seglab/export because models may not import the export layer (docs/extending.md, "Layers").
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from seglab.models.instance.onestage_export import RawNetwork

OUTPUTS = ["semantic", "heatmap", "offsets"]  # == PanopticDeepLab.raw_outputs


def export_raw_onnx(model: nn.Module, path: str | Path, input_size: tuple[int, int] = (256, 256),
                    opset: int = 17) -> Path:
    """Write `model.forward_raw` to `path` as ONNX; the model itself is left untouched. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    network = RawNetwork(copy.deepcopy(model).float().to("cpu", memory_format=torch.contiguous_format)).eval()
    in_channels = next(m for m in network.modules() if isinstance(m, nn.Conv2d)).in_channels
    example = torch.zeros(1, in_channels, *input_size)
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    axes.update({name: {0: "batch", 2: "out_height", 3: "out_width"} for name in OUTPUTS})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(network, (example,), str(path), dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=OUTPUTS, dynamic_axes=axes, do_constant_folding=True)
    return path
