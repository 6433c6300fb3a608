"""Instance inference: a model plus its checkpoint's metadata -> the instances of one image at its own size.

The one path `seglab val` and `seglab predict` share (and training-time validation, at the training size):
1. the model's view: the image resized so its longer side is the training size, decoded as training
   decodes it (`load_image`, the same pixels `InstanceDataset` shows the model), normalised;
2. forward (one image at a time: no padding from batch neighbours, so an image's result never depends
   on which images it was predicted with);
3. the detections with `score >= score_threshold`, at most `max_detections`, best score first;
4. each mask's probabilities resized (bilinear, as `F.interpolate(align_corners=False)`) to the image's
   size and thresholded at 0.5, computed on the mask's own rows and columns only (`resize_rows_cols`:
   exact, not an approximation, since a bilinear value >= 0.5 needs an input value >= 0.5 next to it);
5. masks painted best score first: a pixel belongs to the best detection covering it, so instances do
   not overlap (what an instance-id PNG can hold); a detection whose mask is more than `max_covered` taken
   by better ones is dropped (`keeps`), rather than kept as the sliver left over: on DSB2018 such slivers
   were half of yolo_seg's false positives at IoU 0.5.
The result (`InstancePrediction`) is an id map (0 = background, id k = the k-th best kept detection)
with each instance's score and 0-based label: predict writes it, val scores it.
Large images (mode=tile, or mode=auto beyond auto_tile x the training size: `mode_for`) are predicted from
overlapping tiles at native scale, merged across the seams, instead (seglab/inference/instance_tiling.py).
With an object size (best.pt's preprocess["object_size"], or object_size=), that first result measures the
objects and the image is predicted again at the scale that makes them that size (instance_scale.py).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from seglab.data.dataset import load_image
from seglab.data.instance.object_size import OBJECT_SIZE_KEY
from seglab.data.instance.dataset import resized_size
from seglab.data.io import image_size
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from seglab.engine.device import Runtime, normalize
from seglab.inference.instance_onnx import instance_metadata
from seglab.inference.instance_scale import measured_scale
from seglab.inference.instance_tta import FLIPS, merge, tta_views, unflip
from seglab.inference.predictor import MODES
from seglab.inference.raw_onnx import OnnxRawModel
from seglab.models import model_class
from seglab.models.source import require, resolve_model

RESIZE = "longer_side"  # preprocess["resize"] of an instance checkpoint
MASK_THRESHOLD = 0.5
INFERENCE_ARGUMENTS = ("score_threshold", "max_detections")  # constructor options val / predict override


@dataclass
class InstanceOptions:
    """None = the checkpoint's value (the model's constructor argument), else the dataclass default."""

    score_threshold: float | None = None  # detections kept (predictions.json, COCO AP)
    max_detections: int | None = None
    min_score: float = 0.5  # instances drawn in the id PNG / overlay and matched for matching accuracy
    # whole image (stretch: longer side resized to the training size) or tiles (seglab/inference/instance_tiling.py)
    mode: str = "auto"  # auto: tile when the longer side exceeds auto_tile x the training size
    auto_tile: float = 8.0
    tile: int = 0  # tile side in pixels at the tiling scale; 0 = the training size
    overlap: float = 0.25
    max_covered: float = 0.5  # paint: drop a detection covered more than this
    tta: bool = False  # merge the detections of the mirror images the model trained on (instance_tta.py)
    object_size: float | None = None  # None: the checkpoint's preprocess value (if any); 0: off (instance_scale.py)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: expected one of {', '.join(MODES)}")
        if self.object_size is not None and self.object_size < 0:
            raise ValueError(f"object_size={self.object_size}: expected pixels > 0, or 0 (off)")
        if not 0 <= self.max_covered <= 1:
            raise ValueError(f"max_covered={self.max_covered}: expected a fraction in [0, 1]")
        if not 0 <= self.overlap < 1 or self.tile < 0 or self.auto_tile <= 0:
            raise ValueError(f"overlap={self.overlap} must be in [0, 1), tile={self.tile} >= 0 (0 = the training "
                             f"size), auto_tile={self.auto_tile} > 0")

    @classmethod
    def from_config(cls, cfg, given=None) -> "InstanceOptions":
        """`given`: the keys the config sets (seglab.config.given_keys); val / predict pass it, so the
        detection limits not set stay the checkpoint's and `seglab val model=best.pt` scores what training
        validated. None (training): the limits the model is built with."""
        limits = {k: getattr(cfg, k) if given is None or k in given else None for k in INFERENCE_ARGUMENTS}
        return cls(**limits, min_score=cfg.min_score, mode=cfg.mode, auto_tile=cfg.auto_tile, tile=cfg.tile,
                   overlap=cfg.overlap, max_covered=cfg.max_covered, tta=cfg.tta,
                   object_size=cfg.object_size if given is None or "object_size" in given else None)

    def resolved(self, model: type, model_args: dict) -> "InstanceOptions":
        """Every None replaced by the checkpoint's argument, else the architecture's constructor default."""
        defaults = {k: p.default for k, p in inspect.signature(model).parameters.items()}
        values = {k: next(v for v in (getattr(self, k), model_args.get(k), defaults.get(k)) if v is not None)
                  for k in INFERENCE_ARGUMENTS}
        return replace(self, **values)


@dataclass
class InstancePrediction:
    """`ids` int32 [H, W] (0 background, k = instance k); `scores` [M] descending, `labels` [M] 0-based."""

    ids: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def masks(self) -> np.ndarray:
        """bool [M, H, W], one per instance (they do not overlap)."""
        if not len(self):
            return np.zeros((0, *self.ids.shape), bool)
        return self.ids[None] == np.arange(1, len(self) + 1, dtype=self.ids.dtype)[:, None, None]

    def confident(self, min_score: float) -> "InstancePrediction":
        """The instances with score >= min_score (a prefix, as scores descend), ids unchanged."""
        n = int((self.scores >= min_score).sum())
        ids = np.where(self.ids <= n, self.ids, 0).astype(self.ids.dtype)
        return InstancePrediction(ids, self.scores[:n], self.labels[:n])

    def evaluator_input(self) -> dict:
        """What seglab.metrics.InstanceEvaluator takes as a prediction."""
        return {"masks": self.masks, "scores": self.scores, "labels": self.labels}


def interpolation_matrix(out_size: int, in_size: int) -> np.ndarray:
    """float32 [out, in]: 1-D bilinear resampling as torch's interpolate(align_corners=False) computes it."""
    matrix = np.zeros((out_size, in_size), np.float32)
    src = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = (src - low).astype(np.float32)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def resize_rows_cols(probs: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, slice, slice]:
    """One mask's probabilities [h, w] resized by the matrices rows [H, h], cols [W, w] and thresholded,
    on the output rows / columns that the mask's >= 0.5 pixels reach: (bool block, row slice, col slice)."""
    ys, xs = np.nonzero(probs >= MASK_THRESHOLD)
    if not len(ys):
        return np.zeros((0, 0), bool), slice(0, 0), slice(0, 0)
    r0, r1, c0, c1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    out_rows = np.flatnonzero(rows[:, r0:r1].sum(1) > 0)
    out_cols = np.flatnonzero(cols[:, c0:c1].sum(1) > 0)
    if not len(out_rows) or not len(out_cols):  # shrunk more than 2x, no output pixel reads the mask: it vanishes
        return np.zeros((0, 0), bool), slice(0, 0), slice(0, 0)
    r0, r1 = max(r0 - 1, 0), min(r1 + 1, probs.shape[0])  # the neighbours bilinear reads
    c0, c1 = max(c0 - 1, 0), min(c1 + 1, probs.shape[1])
    rs, cs = slice(out_rows[0], out_rows[-1] + 1), slice(out_cols[0], out_cols[-1] + 1)
    block = rows[rs, r0:r1] @ probs[r0:r1, c0:c1] @ cols[cs, c0:c1].T
    return block >= MASK_THRESHOLD, rs, cs


def keeps(mask: np.ndarray, free: np.ndarray, max_covered: float) -> bool:
    """Is a detection painted: some of its pixels `free` (bool, within `mask`), at most `max_covered` of it taken?"""
    left = int(free.sum())
    return left > 0 and int(mask.sum()) - left <= max_covered * int(mask.sum())


def paint(probs: np.ndarray, size: tuple[int, int], max_covered: float = 1.0) -> tuple[np.ndarray, list[int]]:
    """Masks [M, h, w] (best first) -> (id map int32 [H, W] at `size`, indices of the detections kept)."""
    height, width = size
    rows, cols = interpolation_matrix(height, probs.shape[1]), interpolation_matrix(width, probs.shape[2])
    ids = np.zeros((height, width), np.int32)
    kept: list[int] = []
    for index, mask in enumerate(probs):
        block, rs, cs = resize_rows_cols(mask, rows, cols)
        target = ids[rs, cs]
        free = block & (target == 0)
        if keeps(block, free, max_covered):
            kept.append(index)
            target[free] = len(kept)
    return ids, kept


def instance_view(image: str | Path | np.ndarray, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(uint8 [3, h, w] with the longer side `size`, the image's own (H, W)) as training decodes it."""
    if isinstance(image, np.ndarray):
        height, width = image.shape[:2]
        h, w = resized_size(height, width, size)
        view = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR)) if (h, w) != (height, width) else image
        return torch.from_numpy(np.ascontiguousarray(view.transpose(2, 0, 1))), (height, width)
    width, height = image_size(Path(image))
    return torch.from_numpy(load_image(image, resized_size(height, width, size))), (height, width)


def with_options(meta: dict, options: InstanceOptions) -> dict:
    """A checkpoint's (or ONNX file's) metadata with the inference options set as the arch's constructor arguments."""
    takes = inspect.signature(model_class(meta["arch"]["name"])).parameters
    overrides = {k: getattr(options, k) for k in INFERENCE_ARGUMENTS if k in takes and getattr(options, k) is not None}
    return {**meta, "arch": {**meta["arch"], "args": {**meta["arch"]["args"], **overrides}}}


def checkpoint_model(path: Path, runtime: Runtime, options: InstanceOptions) -> tuple[nn.Module, dict]:
    """The checkpoint's model rebuilt with the inference options as its constructor arguments."""
    ckpt = load_checkpoint(path)
    if ckpt.get("task") != "instance":
        raise CheckpointError(f"{path}: a {ckpt.get('task', 'semantic')} checkpoint, not an instance one")
    ckpt = with_options(ckpt, options)
    return runtime.prepare_model(model_from_checkpoint(ckpt)), ckpt


def onnx_model(path: Path, runtime: Runtime, options: InstanceOptions) -> tuple[nn.Module, dict]:
    """An exported network (onnxruntime, fp32) decoded by its architecture's postprocess with the options."""
    meta = with_options(instance_metadata(path), options)
    return runtime.prepare_model(OnnxRawModel(path, meta["arch"], meta["outputs"])), meta


MODEL_LOADERS = {"checkpoint": checkpoint_model, "onnx": onnx_model}  # model= kind -> (model, metadata)


class InstancePredictor:
    """`model`: a checkpoint path or run folder, an exported .onnx file (instance_onnx.py), or an in-memory
    model with `metadata` = {classes, preprocess} (training-time validation; put back in the mode it was in
    by the caller)."""

    def __init__(self, model: str | Path | nn.Module, runtime: Runtime, options: InstanceOptions | None = None,
                 metadata: dict | None = None):
        self.runtime, self.options = runtime, options or InstanceOptions()
        if isinstance(model, nn.Module):
            self.model, self.checkpoint, self.source = model, dict(metadata or {}), "in-memory model"
            self.options = self.options.resolved(type(model), {})
        else:
            source = require(resolve_model(model), "instance inference", tuple(MODEL_LOADERS))
            self.model, self.checkpoint = MODEL_LOADERS[source.kind](source.path, runtime, self.options)
            self.source = str(source.path)
            self.options = self.options.resolved(model_class(self.checkpoint["arch"]["name"]),
                                                 self.checkpoint["arch"]["args"])
        preprocess = self.checkpoint["preprocess"]
        if preprocess.get("resize") != RESIZE:
            raise CheckpointError(f"{self.source}: preprocess resize={preprocess.get('resize')!r}; instance models "
                                  f"are trained with {RESIZE!r}")
        self.mean, self.std, self.size = preprocess["mean"], preprocess["std"], int(preprocess["size"])
        classes = self.checkpoint["classes"]
        self.classes = classes if isinstance(classes, ClassTable) else ClassTable.from_dict(classes)
        self.category_ids = list(self.checkpoint.get("category_ids") or range(1, self.classes.num_classes + 1))
        self.views = tta_views(self.checkpoint.get("config")) if self.options.tta else ("identity",)
        recorded = preprocess.get(OBJECT_SIZE_KEY)
        self.object_size = float(recorded or 0) if self.options.object_size is None else self.options.object_size

    def describe(self) -> str:
        o = self.options
        return (f"longer side {self.size}, score >= {o.score_threshold}, at most {o.max_detections} detections, "
                f"drawn / matched at score >= {o.min_score}, mode={o.mode}"
                + (f" (tiles of {o.tile or self.size} overlapping by {o.overlap})" if o.mode != "stretch" else "")
                + (f", tta over {' + '.join(self.views)}" if o.tta else "")
                + (f", then again at the scale that makes objects {self.object_size:g} px across"
                   if self.object_size else ""))

    @torch.no_grad()
    def forward_view(self, view: torch.Tensor) -> dict:
        """uint8 [3, h, w] -> one forward's detections (numpy, on the CPU) after the score threshold and cap."""
        self.model.eval()
        x = normalize(view[None], self.mean, self.std, self.runtime)
        with self.runtime.autocast():
            out = self.model(x)[0]
        scores = out["scores"].float().cpu()
        order = torch.argsort(scores, descending=True, stable=True)
        order = order[scores[order] >= self.options.score_threshold][: self.options.max_detections]
        return {"scores": scores[order].numpy(), "labels": (out["labels"].cpu()[order] - 1).numpy(),
                "boxes": out["boxes"].float().cpu()[order].numpy(), "probs": out["masks"].float().cpu()[order, 0].numpy()}

    def detect(self, view: torch.Tensor) -> dict:
        """uint8 [3, h, w] -> the detections {scores, labels, boxes, probs} of the view, best first; with tta,
        merged over its mirror images (seglab/inference/instance_tta.py) and thresholded and capped again."""
        if not self.options.tta:
            return self.forward_view(view)
        height, width = view.shape[-2:]
        found = merge([unflip(self.forward_view(view.flip(FLIPS[name]) if FLIPS[name] else view), FLIPS[name],
                              height, width) for name in self.views])
        n = min(int((found["scores"] >= self.options.score_threshold).sum()), self.options.max_detections)
        return {k: v[:n] for k, v in found.items()}

    def predict_view(self, view: torch.Tensor, size: tuple[int, int]) -> InstancePrediction:
        """The instances of a model view at `size` (the image's own, or the view's for training-size scoring)."""
        found = self.detect(view)
        ids, kept = paint(found["probs"], size, self.options.max_covered)
        return InstancePrediction(ids, found["scores"][kept], found["labels"][kept].astype(np.int64))

    def mode_for(self, height: int, width: int) -> str:
        """stretch (the whole image, longer side at the training size) or tile, by semantic predict's rule."""
        mode = self.options.mode
        if mode == "auto":
            mode = "tile" if max(height, width) > self.options.auto_tile * self.size else "stretch"
        return mode

    def predict(self, image: str | Path | np.ndarray) -> InstancePrediction:
        """An image file (decoded as in training) or an RGB array -> its instances at its own size; with an
        object size, predicted again at the scale the first result measures (instance_scale.py)."""
        first = self.predict_once(image)
        scale = measured_scale(first, self.object_size) if self.object_size else None
        return first if scale is None else self.predict_at(image, scale)

    def predict_at(self, image: str | Path | np.ndarray, scale: float) -> InstancePrediction:
        """The instances from tiles of the training size at `scale` view pixels per source pixel (one tile of the
        whole image when it fits)."""
        from seglab.inference.instance_tiling import predict_tiled  # it builds on this module

        return predict_tiled(image, self.detect, self.options.tile or self.size, self.options.overlap, scale,
                             max_covered=self.options.max_covered)

    def predict_once(self, image: str | Path | np.ndarray) -> InstancePrediction:
        """The whole image at the longer-side rule, or tiles at the checkpoint's native scale (`mode_for`)."""
        height, width = image.shape[:2] if isinstance(image, np.ndarray) else image_size(Path(image))[::-1]
        if self.mode_for(height, width) == "tile":
            from seglab.inference.instance_tiling import tile_scale

            return self.predict_at(image, tile_scale(self.checkpoint["preprocess"], self.source))
        view, size = instance_view(image, self.size)
        return self.predict_view(view, size)
