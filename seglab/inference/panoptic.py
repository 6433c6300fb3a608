"""Panoptic inference: a model plus its checkpoint's metadata -> the canonical panoptic prediction of one image
at its own size. The one path `seglab val` and `seglab predict` share (and training-time validation, at the
training size):
1. the model's view: the image resized so its longer side is the training size, decoded as training decodes
   it (`instance_view`: the pixels PanopticDataset shows the model), normalised, padded bottom / right with
   0 (the mean colour) to a multiple of `model.multiple`;
2. `model(x)` in eval mode (the network and its grouping, seglab/models/panoptic/), one image at a time;
3. the padding cropped, the segment ids resized to the image's size by nearest neighbour (pixel centres,
   the rule the dataset resizes truth with), segments that vanish dropped, ids renumbered 1..S.
The result (`PanopticPrediction`) is what predict writes (PNG + segments_info) and val scores.
Large images (mode=tile, or mode=auto beyond auto_tile x the training size: `TileOptions.mode_for`) are predicted
from overlapping tiles at native scale through the same `predict_view`, things merged across the seams, then
`at_size` as above (seglab/inference/panoptic_tiling.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seglab.data.io import image_size
from seglab.data.panoptic import resize_ids
from seglab.data.panoptic.spec import compact
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
)
from seglab.engine.device import Runtime, normalize
from seglab.inference.instance import RESIZE, instance_view
from seglab.inference.instance_tiling import tile_scale
from seglab.inference.panoptic_tiling import TileOptions, predict_tiled
from seglab.metrics.panoptic import segments_info
from seglab.models.source import require, resolve_model

TASK = "panoptic"


@dataclass
class PanopticPrediction:
    """`segment_ids` int64 [H, W] (0 void, 1..S); `segments` [{"id", "category_id" (0-based), "score", "iscrowd"}]."""

    segment_ids: np.ndarray
    segments: list[dict]

    def evaluator_input(self) -> dict:
        """What seglab.metrics.PanopticEvaluator takes as a prediction."""
        return {"segment_ids": self.segment_ids, "segments": self.segments}

    def segments_info(self, category_ids: list[int]) -> list[dict]:
        """COCO panoptic segments_info (dataset category ids, area, bbox, iscrowd) plus each segment's score."""
        by_id = {s["id"]: s for s in self.segments}
        info = segments_info(self.segment_ids, {sid: category_ids[s["category_id"]] for sid, s in by_id.items()})
        for entry in info:
            entry["score"] = round(float(by_id[entry["id"]].get("score", 1.0)), 6)
        return info


def at_size(segment_ids: np.ndarray, segments: list[dict], size: tuple[int, int]) -> PanopticPrediction:
    """A prediction [h, w] -> at `size` (nearest), vanished segments dropped, ids 1..S."""
    ids, kept = compact(resize_ids(np.asarray(segment_ids, np.int64), size), list(segments))
    return PanopticPrediction(ids, [{"id": s["id"], "category_id": int(s["category_id"]),
                                     "score": float(s.get("score", 1.0)), "iscrowd": 0} for s in kept])


def metadata_of(checkpoint: dict, where: str) -> tuple[ClassTable, list[bool], list[int], dict]:
    """(classes, is_thing, category ids, preprocess) of a panoptic checkpoint, checked."""
    if checkpoint.get("task") != TASK:
        raise CheckpointError(f"{where}: a {checkpoint.get('task', 'semantic')} checkpoint, not a panoptic one")
    classes = checkpoint["classes"]
    classes = classes if isinstance(classes, ClassTable) else ClassTable.from_dict(classes)
    is_thing = [bool(t) for t in checkpoint.get("is_thing", [])]
    if len(is_thing) != classes.num_classes:
        raise CheckpointError(f"{where}: is_thing has {len(is_thing)} flags for {classes.num_classes} classes")
    category_ids = list(checkpoint.get("category_ids") or range(classes.num_classes))
    return classes, is_thing, category_ids, checkpoint.get("preprocess", {})


class PanopticPredictor:
    """`model`: a checkpoint path or run folder, or an in-memory model with `metadata` = {task, classes, is_thing,
    preprocess} (training-time validation; the caller puts it back in the mode it was in). `options`: whole image
    or tiles (val / predict: `TileOptions.from_config`)."""

    def __init__(self, model: str | Path | nn.Module, runtime: Runtime, metadata: dict | None = None,
                 options: TileOptions | None = None):
        self.runtime, self.options = runtime, options or TileOptions()
        if isinstance(model, nn.Module):
            self.model, self.checkpoint, self.source = model, {"task": TASK, **(metadata or {})}, "in-memory model"
        else:
            source = require(resolve_model(model), "panoptic inference", ("checkpoint",))
            self.source = str(source.path)
            self.checkpoint = load_checkpoint(source.path)
            metadata_of(self.checkpoint, self.source)
            self.model = runtime.prepare_model(model_from_checkpoint(self.checkpoint))
        self.classes, self.is_thing, self.category_ids, preprocess = metadata_of(self.checkpoint, self.source)
        if preprocess.get("resize") != RESIZE:
            raise CheckpointError(f"{self.source}: preprocess resize={preprocess.get('resize')!r}; panoptic models "
                                  f"are trained with {RESIZE!r}")
        self.mean, self.std, self.size = preprocess["mean"], preprocess["std"], int(preprocess["size"])
        self.multiple = int(getattr(self.model, "multiple", 1))
        self.scale = tile_scale(preprocess, self.source)  # tiles: training pixels per source pixel

    def describe(self) -> str:
        return (f"{self.checkpoint.get('arch', {}).get('name', 'model')}, longer side {self.size}, "
                f"{self.options.describe(self.size)}, {self.runtime.describe()}")

    @torch.no_grad()
    def predict_view(self, view: torch.Tensor, size: tuple[int, int]) -> PanopticPrediction:
        """A model view uint8 [3, h, w] -> its prediction at `size` (the image's own, or the view's)."""
        self.model.eval()
        height, width = view.shape[-2:]
        x = normalize(view[None], self.mean, self.std, self.runtime)
        x = F.pad(x, (0, -width % self.multiple, 0, -height % self.multiple))
        with self.runtime.autocast():
            out = self.model(x.contiguous(memory_format=self.runtime.memory_format))[0]
        ids = out["segment_ids"][:height, :width].cpu().numpy()
        return at_size(ids, out["segments"], size)

    def predict(self, image: str | Path | np.ndarray) -> PanopticPrediction:
        """An image file (decoded as in training) or an RGB array -> its prediction at its own size."""
        height, width = image.shape[:2] if isinstance(image, np.ndarray) else image_size(Path(image))[::-1]
        if self.options.mode_for(self.size, height, width) == "tile":
            ids, segments, size = predict_tiled(image, self.predict_view, self.is_thing, self.options.tile or self.size,
                                                self.options.overlap, self.scale)
            return at_size(ids, segments, size)
        view, size = instance_view(image, self.size)
        return self.predict_view(view, size)
