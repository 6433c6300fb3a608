"""Sample overlays for a run folder: image | truth | prediction, at each image's own size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.dataset import load_mask
from seglab.data.io import read_image
from seglab.data.spec import SplitSpec
from seglab.inference.overlay import overlay, side_by_side
from seglab.inference.predictor import Predictor


def write_samples(predictor: Predictor, spec: SplitSpec, out_dir: Path, count: int) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    colors, ignore = spec.classes.colors, spec.classes.ignore_index
    written = []
    for index in range(min(count, len(spec.pairs))):
        image_path = spec.pairs[index][0]
        image = np.asarray(read_image(image_path))
        truth = load_mask(spec, index)
        pred = predictor.predict_files([image_path])[0]
        panel = side_by_side(image, overlay(image, truth, colors, ignore), overlay(image, pred, colors, ignore))
        path = out_dir / f"{image_path.stem}.png"
        Image.fromarray(panel).save(path)
        written.append(path)
    return written
