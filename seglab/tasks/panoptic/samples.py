"""Sample overlays for a panoptic run folder: image | truth | prediction, at each image's own size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.io import read_image
from seglab.data.panoptic import PanopticSplit
from seglab.data.panoptic.dataset import checked
from seglab.inference.overlay import side_by_side
from seglab.inference.panoptic import PanopticPrediction
from seglab.inference.panoptic_outputs import panoptic_overlay


def write_samples(predictor, split: PanopticSplit, out_dir: Path, count: int) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for item in split.items[:count]:
        image = np.asarray(read_image(item.image))
        truth = checked(item.load())
        drawn_truth = PanopticPrediction(truth.segment_ids, truth.segments)
        panel = side_by_side(image, panoptic_overlay(image, drawn_truth, predictor.classes, split.is_thing),
                             panoptic_overlay(image, predictor.predict(item.image), predictor.classes, split.is_thing))
        path = out_dir / f"{Path(item.name).stem}.png"
        Image.fromarray(panel).save(path)
        written.append(path)
    return written
