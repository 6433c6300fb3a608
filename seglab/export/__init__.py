"""Model export, all in this package: the ONNX graph writer (onnx.py), its metadata (metadata.py), and a
checkpoint as a self-describing ONNX file checked against PyTorch (checkpoint.py: `export_checkpoint`)."""

from seglab.export.onnx import export_onnx

__all__ = ["export_onnx"]
