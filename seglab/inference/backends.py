"""Where the forward pass runs: PyTorch (eager or compiled) or onnxruntime.

A backend is called with a normalised float batch [N, 3, H, W] on the runtime's device and returns
float32 logits [N, C, H, W] at the same size. Everything around it (normalisation, tiling, TTA,
resizing back) is shared, so both backends give the same predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from seglab.engine.device import Runtime
from seglab.inference.fuse import fold_batchnorm
from seglab.models.padding import pad_to_multiple


class TorchBackend:
    """A model in eval mode on the runtime's device and layout; conv+BN folded; optionally compiled.

    compile=True uses torch.compile with inductor's `freezing` (weights become constants, so conv+BN
    folding and weight prepacking happen at compile time); the first call per input shape compiles.
    """

    name = "torch"

    def __init__(self, model: nn.Module, runtime: Runtime, fuse: bool = True, compile: bool = False):
        self.runtime = runtime
        model = model.eval()
        if fuse:
            model, _ = fold_batchnorm(model)
        self.model = runtime.prepare_model(model)
        self.forward = self.model
        if compile:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
            self.forward = torch.compile(self.model, dynamic=False)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.runtime.device).contiguous(memory_format=self.runtime.memory_format)
        with self.runtime.autocast():
            return self.forward(x).float()


def session_options(threads: int = 0, optimize: bool = True, quiet: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if quiet:  # probing shapes a graph may refuse: no error lines on stderr
        options.log_severity_level = 4
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else level.ORT_DISABLE_ALL
    return options


def read_metadata(path: str | Path) -> dict:
    """A seglab ONNX file's metadata_props, JSON values decoded (without loading the weights)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    out = {}
    for entry in proto.metadata_props:
        try:
            out[entry.key] = json.loads(entry.value)
        except json.JSONDecodeError:
            out[entry.key] = entry.value
    return out


class OnnxBackend:
    """An exported seglab model run by onnxruntime on the CPU (fp32, NCHW).

    Graphs that only accept multiples of `input_multiple` (recorded at export) get their input padded
    at the bottom and right with `pad_mode`, as the PyTorch model pads itself, and the logits cropped.
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 0, optimize: bool = True, metadata: dict | None = None,
                 quiet: bool = False):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("running .onnx models needs onnxruntime: pip install onnxruntime") from None
        self.path = Path(path)
        self.metadata = read_metadata(path) if metadata is None else metadata
        self.multiple = int(self.metadata.get("input_multiple", 1))
        self.pad_mode = str(self.metadata.get("pad_mode", "replicate"))
        providers = ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), session_options(threads, optimize, quiet), providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = pad_to_multiple(x.float().cpu(), self.multiple, self.pad_mode, skip_empty=True)
        array = x.contiguous().numpy()
        logits = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(logits)[..., :height, :width]


