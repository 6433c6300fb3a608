"""Model export: `export_onnx(model, path, ...)` (seglab/export/onnx.py)."""

from seglab.export.onnx import export_onnx

__all__ = ["export_onnx"]
