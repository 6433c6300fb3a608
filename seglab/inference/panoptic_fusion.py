"""Fusion of a semantic model (stuff) and an instance model (things) into one panoptic map: Panoptic FPN's
heuristic (Kirillov et al., CVPR 2019), on two seglab checkpoints.

Classes: the semantic model's classes, then the instance model's classes it lacks; a class is a thing when
the instance model predicts it (matched by name), stuff otherwise. Per image, both models run their own
inference path at the image's own size (seglab/inference/predictor.py for the semantic labels, the
instance model's detections with each mask resized to the image as seglab/inference/instance.py does), then
1. instances by score, best first, those with score >= `score_threshold`; an instance whose pixels are more
   than `overlap_threshold` of its area already taken is dropped, otherwise it takes its free pixels;
2. stuff: for each stuff class, the semantic model's pixels of that class not taken by an instance form one
   segment if there are at least `stuff_area` of them; smaller regions, and pixels the semantic model gives
   a thing class without an instance there, stay void.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seglab.data.spec import ClassTable, default_colors
from seglab.engine.device import Runtime
from seglab.inference.instance import (
    RESIZE,
    InstanceOptions,
    InstancePredictor,
    instance_view,
    interpolation_matrix,
    resize_rows_cols,
)
from seglab.inference.panoptic import TASK, PanopticPrediction
from seglab.inference.predictor import InferenceOptions, Job, Predictor


@dataclass
class FusionOptions:
    score_threshold: float = 0.5
    overlap_threshold: float = 0.5
    stuff_area: int = 4096

    def __post_init__(self):
        if not (0 <= self.score_threshold <= 1 and 0 <= self.overlap_threshold <= 1 and self.stuff_area >= 0):
            raise ValueError(f"fusion: score_threshold and overlap_threshold must be in [0, 1] and stuff_area >= 0, "
                             f"got {self.score_threshold}, {self.overlap_threshold}, {self.stuff_area}")


def fusion_classes(semantic: list[str], things: list[str]) -> tuple[list[str], list[bool]]:
    names = list(semantic) + [t for t in things if t not in semantic]
    return names, [n in things for n in names]


def fuse(semantic_labels: np.ndarray, stuff_of: np.ndarray, detections: list[tuple[float, int, tuple]],
         options: FusionOptions, size: tuple[int, int]) -> PanopticPrediction:
    """semantic labels [H, W] (the semantic model's ids), `stuff_of` [semantic classes] -> panoptic stuff class
    or -1; detections (score, panoptic thing class, (bool block, row slice, col slice)) best first."""
    ids = np.zeros(size, np.int64)
    segments = []
    for score, category, (block, rows, cols) in detections:
        if score < options.score_threshold:
            break
        area = int(block.sum())
        if area == 0:
            continue
        region = ids[rows, cols]
        taken = block & (region > 0)
        if taken.sum() / area > options.overlap_threshold:
            continue
        free = block & ~taken
        if not free.any():
            continue
        segments.append({"id": len(segments) + 1, "category_id": int(category), "score": float(score), "iscrowd": 0})
        region[free] = len(segments)
    panoptic_stuff = stuff_of[np.asarray(semantic_labels, np.int64)]
    for category in np.unique(panoptic_stuff):
        if category < 0:
            continue
        where = (panoptic_stuff == category) & (ids == 0)
        if where.sum() < max(options.stuff_area, 1):
            continue
        segments.append({"id": len(segments) + 1, "category_id": int(category), "score": 1.0, "iscrowd": 0})
        ids[where] = len(segments)
    return PanopticPrediction(ids, segments)


class FusionPredictor:
    """The PanopticPredictor interface (classes, is_thing, category_ids, checkpoint, describe, predict) over a
    semantic and an instance checkpoint."""

    def __init__(self, semantic_model: str | Path, instance_model: str | Path, runtime: Runtime,
                 options: FusionOptions, semantic_options: InferenceOptions | None = None):
        self.runtime, self.options = runtime, options
        self.semantic = Predictor(semantic_model, runtime, semantic_options or InferenceOptions())
        # every detection down to the fusion's threshold (the instance model's own score_threshold is lowered)
        self.instance = InstancePredictor(instance_model, runtime, InstanceOptions(score_threshold=min(
            options.score_threshold, 1.0), max_detections=None))
        names, self.is_thing = fusion_classes(self.semantic.classes.names, self.instance.classes.names)
        colors = dict(zip(self.semantic.classes.names, self.semantic.classes.colors))
        palette = default_colors(len(names) + 1)[1:]
        self.classes = ClassTable(names, [tuple(colors.get(n, palette[i])) for i, n in enumerate(names)])
        self.category_ids = list(range(len(names)))
        index = {n: i for i, n in enumerate(names)}
        self.stuff_of = np.array([-1 if n in self.instance.classes.names else index[n]
                                  for n in self.semantic.classes.names] + [-1] * (256 - len(self.semantic.classes.names)),
                                 np.int64)  # semantic labels are uint8: any value maps
        self.thing_of = np.array([index[n] for n in self.instance.classes.names], np.int64)
        self.size = self.instance.size
        self.source = f"fusion of {semantic_model} (stuff) and {instance_model} (things)"
        self.checkpoint = fusion_record(self, semantic_model, instance_model)

    def describe(self) -> str:
        o = self.options
        return (f"{self.source}: instances with score >= {o.score_threshold}, dropped when more than "
                f"{o.overlap_threshold:g} of them is taken; stuff regions of at least {o.stuff_area} px; "
                f"semantic {self.semantic.describe()}")

    def detections(self, image) -> tuple[list, tuple[int, int]]:
        view, size = instance_view(image, self.instance.size)
        found = self.instance.detect(view)
        probs = found["probs"]
        rows = interpolation_matrix(size[0], probs.shape[1]) if len(probs) else None
        cols = interpolation_matrix(size[1], probs.shape[2]) if len(probs) else None
        return [(float(s), int(self.thing_of[label]), resize_rows_cols(mask, rows, cols))
                for s, label, mask in zip(found["scores"], found["labels"], probs)], size

    def predict(self, image: str | Path | np.ndarray) -> PanopticPrediction:
        job = Job.from_file(image) if not isinstance(image, np.ndarray) else Job(image)
        labels = self.semantic.run([job])[0]
        detections, size = self.detections(image)
        return fuse(labels, self.stuff_of, detections, self.options, size)


def fusion_record(predictor: FusionPredictor, semantic_model, instance_model) -> dict:
    """What a fusion checkpoint (.pt written by `seglab train task=panoptic semantic_model=A instance_model=B`) holds: no weights, both paths."""
    o = predictor.options
    return {"task": TASK, "arch": {"name": "fusion", "args": {}}, "classes": predictor.classes.to_dict(),
            "is_thing": predictor.is_thing, "category_ids": predictor.category_ids, "model": {},
            "preprocess": {"resize": RESIZE, "size": predictor.size},
            "fusion": {"semantic_model": str(Path(semantic_model).resolve()),
                       "instance_model": str(Path(instance_model).resolve()),
                       "score_threshold": o.score_threshold, "overlap_threshold": o.overlap_threshold,
                       "stuff_area": o.stuff_area}}
