"""`seglab export model=RUN/best.pt format=onnx` for instance checkpoints whose model has an ONNX network.

yolo_seg and maskformer_instance export their network (`forward_raw`, seglab/export/raw_network.py: dynamic
batch, height and width); decoding, NMS and mask assembly run after it (`model.postprocess`), so the file holds
no data-dependent control flow. torchvision's Mask R-CNN has no reliable ONNX export and is refused with that
reason. The file carries task, arch, classes, category ids, preprocess and config as metadata, and is checked
against PyTorch with onnxruntime at the training size and at an odd size.
"""

from __future__ import annotations

from pathlib import Path

from seglab.config import Config
from seglab.export.raw_network import export_network, network_metadata
from seglab.models import model_class


def onnx_metadata(ckpt: dict, names: list[str]) -> dict:
    """What an instance checkpoint tells inference (seglab/inference/instance_onnx.py), for the ONNX file."""
    return network_metadata({**ckpt, "task": "instance"}, names, "decoded by the model's postprocess")


def refuse(checkpoint: Path, ckpt: dict) -> None:
    if not hasattr(model_class(ckpt["arch"]["name"]), "forward_raw"):
        raise ValueError(f"{checkpoint}: {ckpt['arch']['name']} has no ONNX export (torchvision's Mask R-CNN "
                         "does not export reliably); yolo_seg and maskformer_instance checkpoints export")


def export(cfg: Config) -> Path:
    path, summary = export_network(cfg.model, cfg.out, cfg.format, cfg.opset, onnx_metadata, refuse)
    if cfg.verbose:
        print(summary, flush=True)
    return path
