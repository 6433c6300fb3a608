"""`seglab export model=CHECKPOINT.pt format=onnx [out=FILE.onnx] [opset=17]`.

The ONNX file has dynamic batch, height and width and carries the class table and the input
normalisation as metadata, so `seglab predict model=FILE.onnx` needs nothing else. After writing,
the graph is run with onnxruntime against PyTorch at the training size and at an odd size.
"""

from __future__ import annotations

from pathlib import Path

from seglab.config import Config
from seglab.export.checkpoint import TOLERANCE, export_checkpoint
from seglab.models.source import require, resolve_model

FORMATS = ("onnx",)


def export(cfg: Config) -> Path:
    if cfg.format not in FORMATS:
        raise ValueError(f"format={cfg.format!r}: expected one of {', '.join(FORMATS)}")
    checkpoint = require(resolve_model(cfg.model), "export", ("checkpoint",)).path
    out = Path(cfg.out) if cfg.out else None
    if out is not None and out.suffix.lower() != ".onnx":
        out = out / checkpoint.with_suffix(".onnx").name
    path, report = export_checkpoint(checkpoint, out, cfg.opset)
    if cfg.verbose:
        diffs = ", ".join(f"{size}: {diff:.1e}" for size, diff in report["max_abs_diff"].items())
        print(f"exported {checkpoint} -> {path} (opset {cfg.opset}, dynamic batch/height/width, "
              f"{path.stat().st_size / 1e6:.1f} MB)\nonnxruntime vs PyTorch, max |logit difference|: {diffs}")
        if report["input_multiple"] > 1:
            print(f"the graph takes sides that are multiples of {report['input_multiple']}; `seglab predict` pads "
                  f"other sizes ({report['pad_mode']}), as the PyTorch model does")
        if max(report["max_abs_diff"].values()) > TOLERANCE:
            print(f"warning: onnxruntime differs from PyTorch by more than {TOLERANCE}", flush=True)
    return path
