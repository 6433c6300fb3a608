"""`seglab export task=prompt model=...`: a promptable model as two ONNX files, image encoder + prompt decoder.

`model=` is anything `seglab.prompt.Predictor` loads: a click-model checkpoint or run folder
(seglab/prompt/click_onnx.py), official SAM / MobileSAM weights or a fine-tuned SAM (seglab.prompt.export_onnx),
an official SAM 2 / 2.1 checkpoint (seglab/prompt/sam2_onnx_export.py). `out=` is the folder (default:
<checkpoint stem>_onnx beside it) that receives encoder.onnx and decoder.onnx. Parity is checked at export:
the exported pair runs through its onnxruntime backend and the PyTorch backend on the same random image and
prompts (clicks, a box, clicks with the previous mask), and the largest difference of the low-res logits and
the scores is printed and written to <out>/export.json, with `runner`: the class that runs the pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seglab.config import Config
from seglab.engine.run_folder import write_json
from seglab.models.source import require, resolve_model
from seglab.prompt.click_backend import ClickBackend
from seglab.prompt.click_onnx import OnnxClickBackend, export_click_onnx
from seglab.prompt.onnx_export import OnnxSamBackend, export_onnx
from seglab.prompt.predictor import Predictor
from seglab.prompt.sam2_official import Sam2Backend
from seglab.prompt.sam2_onnx_export import OnnxSam2Backend, export_sam2_onnx
from seglab.prompt.sam_official import SamBackend

FORMATS = ("onnx",)
TOLERANCE = 1e-3  # max |difference| accepted as "the same graph"


@dataclass(frozen=True)
class Exporter:
    write: Callable  # (backend, out_dir, opset) -> {"encoder": path, "decoder": path}
    runner: Callable  # (encoder path, decoder path) -> the PromptBackend that runs the files


EXPORTERS = {  # backend class -> how it exports (the checkpoint decides the backend)
    ClickBackend: Exporter(lambda backend, out, opset: export_click_onnx(backend, out, opset), OnnxClickBackend),
    SamBackend: Exporter(lambda backend, out, opset: export_onnx(backend, out, opset), OnnxSamBackend),
    Sam2Backend: Exporter(lambda backend, out, opset: export_sam2_onnx(backend, out, opset), OnnxSam2Backend),
}


def parity_prompts(height: int, width: int) -> list[dict]:
    """Clicks (multimask), a box, and clicks with the previous answer fed back, inside an image of this size."""
    clicks = {"point_coords": np.array([[width * 0.4, height * 0.5], [width * 0.7, height * 0.3]], np.float32),
              "point_labels": np.array([1, 0])}
    return [{**clicks, "multimask_output": True},
            {"box": np.array([width * 0.1, height * 0.2, width * 0.8, height * 0.9], np.float32),
             "multimask_output": False},
            {**clicks, "feed_back": True, "multimask_output": False}]


def parity(torch_backend, onnx_backend, seed: int = 0) -> dict:
    """{"low_res": max |difference|, "scores": ...} of the two backends on a random image and parity_prompts."""
    image = np.random.default_rng(seed).integers(0, 256, (45, 61, 3), dtype=np.uint8)  # odd sizes: padded, resized
    ours, theirs = Predictor(torch_backend), Predictor(onnx_backend)
    ours.set_image(image)
    theirs.set_image(image)
    report, previous = {"low_res": 0.0, "scores": 0.0}, None
    for prompt in parity_prompts(*image.shape[:2]):
        prompt = dict(prompt)
        if prompt.pop("feed_back", False):
            prompt["mask_input"] = previous
        want = ours.predict(**prompt, return_logits=True)
        got = theirs.predict(**prompt, return_logits=True)
        report["low_res"] = max(report["low_res"], float(np.abs(got[2] - want[2]).max()))
        report["scores"] = max(report["scores"], float(np.abs(got[1] - want[1]).max()))
        previous = want[2][:1]
    return report


def export(cfg: Config) -> Path:
    if cfg.format not in FORMATS:
        raise ValueError(f"format={cfg.format!r}: expected one of {', '.join(FORMATS)}")
    path = require(resolve_model(cfg.model), "export", ("checkpoint",)).path
    backend = Predictor(path, device="cpu").backend
    exporter = EXPORTERS.get(type(backend))
    if exporter is None:
        raise ValueError(f"{path}: {backend.name} ({type(backend).__name__}) has no ONNX export; click-model "
                         f"checkpoints, SAM / MobileSAM and SAM 2 weights export")
    out = Path(cfg.out) if cfg.out else path.with_name(f"{path.stem}_onnx")
    with torch.no_grad():
        paths = exporter.write(backend, out, cfg.opset)
    report = parity(backend, exporter.runner(paths["encoder"], paths["decoder"]))
    write_json(out / "export.json", {"model": str(path), "backend": backend.name, "opset": cfg.opset,
                                     "runner": exporter.runner.__name__,
                                     "files": {k: p.name for k, p in paths.items()}, "parity": report,
                                     "tolerance": TOLERANCE})
    if cfg.verbose:
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths.values())
        print(f"exported {path} ({backend.name}) -> {out} ({sizes}; opset {cfg.opset})\n"
              f"onnxruntime vs PyTorch, max |difference|: low-res logits {report['low_res']:.1e}, "
              f"scores {report['scores']:.1e}")
        if max(report.values()) > TOLERANCE:
            print(f"warning: onnxruntime differs from PyTorch by more than {TOLERANCE}", flush=True)
    return out
