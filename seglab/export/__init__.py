"""Model export, all in this package: the ONNX graph writer (onnx.py), its metadata (metadata.py), a
checkpoint as a self-describing ONNX file checked against PyTorch (checkpoint.py: `export_checkpoint`), and the
network alone (`forward_raw`) of the instance and panoptic models whose outputs are decoded after it
(raw_network.py: `export_network`)."""

from seglab.export.onnx import export_onnx

__all__ = ["export_onnx"]
