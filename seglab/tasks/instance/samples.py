"""Sample overlays for an instance run folder: image | truth | prediction, at each image's own size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.instance import InstanceSplit
from seglab.data.io import read_image
from seglab.inference.instance import InstancePrediction, InstancePredictor
from seglab.inference.instance_outputs import instance_overlay
from seglab.inference.overlay import side_by_side


def truth_as_prediction(masks: np.ndarray, labels: np.ndarray) -> InstancePrediction:
    """Stored instances drawn like predictions (score 1; where they overlap, the first one wins)."""
    ids = np.zeros(masks.shape[1:], np.int32)
    for k in range(len(masks) - 1, -1, -1):
        ids[masks[k]] = k + 1
    return InstancePrediction(ids, np.ones(len(masks)), np.asarray(labels, np.int64))


def write_samples(predictor: InstancePredictor, split: InstanceSplit, out_dir: Path, count: int) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for item in split.items[:count]:
        image = np.asarray(read_image(item.image))
        truth = item.load()
        predicted = predictor.predict(item.image).confident(predictor.options.min_score)
        panel = side_by_side(image, instance_overlay(image, truth_as_prediction(truth.masks, truth.labels),
                                                     split.classes, text=False),
                             instance_overlay(image, predicted, split.classes))
        path = out_dir / f"{Path(item.name).stem}.png"
        Image.fromarray(panel).save(path)
        written.append(path)
    return written
