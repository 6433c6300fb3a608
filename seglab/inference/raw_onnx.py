"""An exported raw network (`seglab export` of an instance or panoptic checkpoint) run by onnxruntime, its
outputs decoded by the model's own code.

The ONNX file holds the network alone (images -> the tensors `forward_raw` returns, named in the metadata's
`outputs`; written by seglab/export/raw_network.py). `OnnxRawModel` runs it and hands the outputs, as tensors,
to `postprocess` of the architecture the file's metadata names, rebuilt from the metadata's `arch` on the meta
device (its attributes only: no weights are allocated). So decoding, NMS, mask assembly or grouping are the same
code as for the checkpoint, and the task's predictor runs an .onnx file through its one inference path
(instance_onnx.py, panoptic_onnx.py). Everything runs in fp32 on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seglab.engine.checkpoint import CheckpointError
from seglab.inference.backends import read_metadata, session_options
from seglab.models import build_model

REQUIRED = ("task", "arch", "classes", "preprocess", "outputs")  # what every raw-network export writes


def raw_metadata(path: str | Path, task: str, required: tuple[str, ...] = ()) -> dict:
    """The metadata of a `task` raw-network ONNX file (as a checkpoint holds it), checked for what inference needs."""
    metadata = read_metadata(path)
    found = metadata.get("task", "semantic")
    if found != task:
        raise CheckpointError(f"{path}: a {found} ONNX file, not {'an' if task[0] in 'aeiou' else 'a'} {task} one")
    missing = [k for k in (*REQUIRED, *required) if k not in metadata]
    if missing:
        raise CheckpointError(f"{path}: ONNX metadata lacks {', '.join(missing)} (export it again with "
                              f"`seglab export model=best.pt`)")
    return metadata


class OnnxRawModel(nn.Module):
    """`forward(images)` -> what the PyTorch model returns in eval mode (its postprocess of the raw outputs);
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
        self.multiple = int(getattr(decoder, "multiple", 1))
        self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @property
    def inference(self) -> dict:
        """The decoding options (score threshold, NMS, caps, grouping thresholds) the model was rebuilt with."""
        return self.decoder[0].inference

    def forward_raw(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        array = images.detach().float().cpu().contiguous().numpy()
        return tuple(torch.from_numpy(a) for a in self.session.run(self.outputs, {self.input_name: array}))

    def forward(self, images: torch.Tensor):
        with torch.autocast("cpu", enabled=False):  # onnxruntime runs fp32: decode in fp32 as well
            return self.decoder[0].postprocess(self.forward_raw(images), images.shape[-2:])
