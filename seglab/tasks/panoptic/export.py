"""`seglab export model=RUN/best.pt format=onnx` for panoptic checkpoints: the network (`model.forward_raw`) as ONNX.

The graph is written and checked by seglab/export/raw_network.py (dynamic batch, height and width; onnxruntime
parity at the training size and at an odd size). The grouping (centres, offsets, segments) stays in torch after
the network (`model.postprocess`), so the file holds no data-dependent control flow. The file carries task,
arch, classes, is_thing, category ids, preprocess, config and the names of its outputs as metadata
(seglab/inference/panoptic_onnx.py reads them). A fusion has no network of its own: export its two checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from seglab.config import Config
from seglab.export.raw_network import export_network, network_metadata
from seglab.tasks.panoptic.predictors import names_parts


def onnx_metadata(ckpt: dict, names: list[str]) -> dict:
    return {**network_metadata({**ckpt, "task": "panoptic"}, names, "grouped into segments by the model's postprocess"),
            "is_thing": ckpt["is_thing"]}


def refuse(checkpoint: Path, ckpt: dict) -> None:
    if "fusion" in ckpt:
        raise ValueError(f"{checkpoint}: a fusion of {ckpt['fusion']['semantic_model']} and "
                         f"{ckpt['fusion']['instance_model']}; export those two checkpoints")


def export(cfg: Config) -> Path:
    if names_parts(cfg):
        raise ValueError("a fusion has no network of its own: export its parts, `seglab export "
                         "model=SEMANTIC.pt` and `seglab export model=INSTANCE.pt`")
    path, summary = export_network(cfg.model, cfg.out, cfg.format, cfg.opset, onnx_metadata, refuse)
    if cfg.verbose:
        print(summary, flush=True)
    return path
