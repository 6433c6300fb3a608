"""An exported instance network (`seglab export` of yolo_seg or maskformer_instance) for InstancePredictor.

onnxruntime runs the network, the architecture's own `postprocess` (rebuilt from the file's `arch`) decodes
it: `OnnxRawModel` of seglab/inference/raw_onnx.py, whose `forward(images)` gives the instance contract's list of
detections. So `InstancePredictor` runs an .onnx file through the one inference path
(seglab/inference/instance.py) and gives the checkpoint's detections.
"""

from __future__ import annotations

from pathlib import Path

from seglab.inference.raw_onnx import raw_metadata


def instance_metadata(path: str | Path) -> dict:
    """The metadata of an instance ONNX file (as a checkpoint holds it), checked for what inference needs."""
    return raw_metadata(path, "instance")
