"""`seglab export model=CHECKPOINT.pt format=onnx [out=FILE.onnx] [opset=17]`.

The ONNX file has dynamic batch, height and width and carries the class table and the input
normalisation as metadata, so `seglab predict model=FILE.onnx` needs nothing else. After writing,
the graph is run with onnxruntime against PyTorch at the training size and at an odd size.
"""

from __future__ import annotations

from pathlib import Path

from seglab.config import Config
from seglab.inference.onnx_file import TOLERANCE, export_checkpoint

FORMATS = ("onnx",)


def export(cfg: Config) -> Path:
    if cfg.format not in FORMATS:
        raise ValueError(f"format={cfg.format!r}: expected one of {', '.join(FORMATS)}")
    if not str(cfg.model).endswith(".pt"):
        raise ValueError(f"model={cfg.model!r}: export needs a checkpoint .pt (e.g. runs/train/best.pt)")
    out = Path(cfg.out) if cfg.out else None
    if out is not None and out.suffix.lower() != ".onnx":
        out = out / Path(cfg.model).with_suffix(".onnx").name
    path, report = export_checkpoint(cfg.model, out, cfg.opset)
    if cfg.verbose:
        diffs = ", ".join(f"{size}: {diff:.1e}" for size, diff in report["max_abs_diff"].items())
        print(f"exported {cfg.model} -> {path} (opset {cfg.opset}, dynamic batch/height/width, "
              f"{path.stat().st_size / 1e6:.1f} MB)\nonnxruntime vs PyTorch, max |logit difference|: {diffs}")
        if report["input_multiple"] > 1:
            print(f"the graph takes sides that are multiples of {report['input_multiple']}; `seglab predict` pads "
                  f"other sizes ({report['pad_mode']}), as the PyTorch model does")
        if max(report["max_abs_diff"].values()) > TOLERANCE:
            print(f"warning: onnxruntime differs from PyTorch by more than {TOLERANCE}", flush=True)
    return path
