"""An exported instance network (`seglab export`, yolo_seg) run by onnxruntime, decoded by the model's own code.

The ONNX file holds the raw network only (images -> logits, boxes, coefficients, protos; see
seglab/models/instance/onestage_export.py). `OnnxInstanceModel` runs it and hands the outputs, as
tensors, to `postprocess` of the architecture the file's metadata names, rebuilt from the metadata's
`arch` on the meta device (its attributes only: no weights are allocated). So decoding, NMS and mask
assembly are the same code as for the checkpoint, and `InstancePredictor` runs an .onnx file through
the one inference path (seglab/inference/instance.py). Everything runs in fp32 on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seglab.engine.checkpoint import CheckpointError
from seglab.inference.backends import read_metadata, session_options
from seglab.models import build_model

REQUIRED = ("task", "arch", "classes", "preprocess", "outputs")  # what the instance export writes


def instance_metadata(path: str | Path) -> dict:
    """The metadata of an instance ONNX file (as a checkpoint holds it), checked for what inference needs."""
    metadata = read_metadata(path)
    missing = [k for k in REQUIRED if k not in metadata]
    if metadata.get("task", "semantic") != "instance":
        raise CheckpointError(f"{path}: a {metadata.get('task', 'semantic')} ONNX file, not an instance one")
    if missing:
        raise CheckpointError(f"{path}: ONNX metadata lacks {', '.join(missing)} (export it again with "
                              f"`seglab export model=best.pt`)")
    return metadata


class OnnxInstanceModel(nn.Module):
    """`forward(images)` -> the instance contract's list of detections, like the PyTorch model in eval mode;
    `forward_raw(images)` -> the raw outputs. `arch` = {"name", "args"} of the exported model."""

    def __init__(self, path: str | Path, arch: dict, outputs: list[str], threads: int = 0):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("running .onnx models needs onnxruntime: pip install onnxruntime") from None
        self.path, self.outputs = Path(path), list(outputs)
        with torch.device("meta"):
            decoder = build_model(arch["name"], arch["args"], pretrained=False)
        if not hasattr(decoder, "postprocess"):
            raise CheckpointError(f"{path}: {arch['name']} has no postprocess to decode raw ONNX outputs")
        self.decoder = [decoder]  # in a list: not a submodule (meta tensors must not follow .to())
        self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @property
    def inference(self) -> dict:
        """The decoding options (score threshold, NMS, caps) the model was rebuilt with."""
        return self.decoder[0].inference

    def forward_raw(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        array = images.detach().float().cpu().contiguous().numpy()
        return tuple(torch.from_numpy(a) for a in self.session.run(self.outputs, {self.input_name: array}))

    def forward(self, images: torch.Tensor) -> list[dict]:
        with torch.autocast("cpu", enabled=False):  # onnxruntime runs fp32: decode in fp32 as well
            return self.decoder[0].postprocess(self.forward_raw(images), images.shape[-2:])
