"""`seglab predict|val model=FILE.onnx` for an exported panoptic network (panoptic_deeplab, maskformer).

onnxruntime runs the network, the architecture's own `postprocess` (the grouping into segments, rebuilt from the
file's `arch`) runs in torch after it: seglab/inference/raw_onnx.py. The file's metadata stands in for the
checkpoint's (classes, is_thing, category ids, preprocess, config), so `PanopticPredictor` runs it through the
one inference path (seglab/inference/panoptic.py) and gives the checkpoint's segments.
"""

from __future__ import annotations

from pathlib import Path

from seglab.engine.device import Runtime
from seglab.inference.panoptic import PanopticPredictor
from seglab.inference.panoptic_tiling import TileOptions
from seglab.inference.raw_onnx import OnnxRawModel, raw_metadata

REQUIRED = ("is_thing",)  # what the panoptic export adds to every raw-network file's metadata


def panoptic_metadata(path: str | Path) -> dict:
    """The metadata of a panoptic ONNX file (as a checkpoint holds it), checked for what inference needs."""
    return raw_metadata(path, "panoptic", REQUIRED)


def onnx_predictor(path: str | Path, runtime: Runtime, threads: int = 0,
                   options: TileOptions | None = None) -> PanopticPredictor:
    """A PanopticPredictor whose model is the exported network (onnxruntime, fp32, CPU) + the model's grouping."""
    metadata = panoptic_metadata(path)
    predictor = PanopticPredictor(OnnxRawModel(path, metadata["arch"], metadata["outputs"], threads), runtime,
                                  metadata, options)
    predictor.source = str(path)
    return predictor
