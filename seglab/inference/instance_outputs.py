"""Files instance `predict` writes per image: the instance-id PNG and the overlay; COCO results entries.

- `<stem>.png`: instance ids at the image's size, 0 background, id k = the k-th best instance drawn
  (score >= min_score); 8-bit, or 16-bit when there are more than 255 instances;
- `<stem>_overlay.png`: each instance filled in its own colour, outlined, labelled "class score";
- `predictions.json` entries (COCO results: image_id, category_id, RLE segmentation, bbox, score) for
  every kept detection, with `file_name` and `instance_id` (its id in the PNG; 0 when not drawn).
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from seglab.inference.instance import InstancePrediction
from seglab.metrics.instance import coco_results

NAMES = "<name>.png instance ids (0 background), <name>_overlay.png, predictions.json (COCO results)"
GOLDEN = 0.618033988749895


def instance_colors(n: int) -> np.ndarray:
    """uint8 [n, 3]: bright colours whose hues step by the golden ratio, so neighbours in score order differ."""
    return np.asarray([[round(255 * c) for c in colorsys.hsv_to_rgb((0.1 + k * GOLDEN) % 1, 0.75, 1.0)]
                       for k in range(n)], np.uint8).reshape(n, 3)


def outlines(ids: np.ndarray) -> np.ndarray:
    """bool [H, W]: instance pixels with a 4-neighbour of another id (the instance's edge)."""
    edge = np.zeros(ids.shape, bool)
    for shifted, region in (((ids[1:], ids[:-1]), (slice(1, None), slice(None))),
                            ((ids[:-1], ids[1:]), (slice(None, -1), slice(None))),
                            ((ids[:, 1:], ids[:, :-1]), (slice(None), slice(1, None))),
                            ((ids[:, :-1], ids[:, 1:]), (slice(None), slice(None, -1)))):
        here, other = shifted
        edge[region] |= here != other
    return edge & (ids > 0)


def instance_overlay(image: np.ndarray, prediction: InstancePrediction, class_names: list[str],
                     alpha: float = 0.45, text: bool = True, colors: np.ndarray | None = None) -> np.ndarray:
    """RGB [H, W, 3]: the image with each instance filled, outlined and (text) labelled 'class score';
    `colors` uint8 [M, 3] per instance (default: instance_colors, by id)."""
    ids = prediction.ids
    palette = np.concatenate([np.zeros((1, 3), np.uint8), instance_colors(len(prediction)) if colors is None else colors])
    colour = palette[ids].astype(np.float32)
    inside = ids > 0
    out = image.astype(np.float32)
    out[inside] = out[inside] * (1 - alpha) + colour[inside] * alpha
    edge = outlines(ids)
    out[edge] = colour[edge]
    result = Image.fromarray(out.round().clip(0, 255).astype(np.uint8))
    if text and len(prediction):
        draw = ImageDraw.Draw(result)
        ys, xs = np.nonzero(inside)
        owners = ids[ys, xs]
        for k in range(1, len(prediction) + 1):
            mine = owners == k
            if not mine.any():
                continue
            x, y = int(xs[mine].min()), int(ys[mine].min())
            label = f"{class_names[prediction.labels[k - 1]]} {prediction.scores[k - 1]:.2f}"
            draw.text((x, max(0, y - 10)), label, fill=tuple(int(v) for v in palette[k]))
    return np.asarray(result)


def save_ids(path: Path, ids: np.ndarray) -> None:
    """Instance ids as an 8-bit PNG, or 16-bit when an id exceeds 255."""
    if ids.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError(f"{path}: {ids.max()} instances do not fit a 16-bit PNG")
    dtype = np.uint8 if ids.max(initial=0) <= 255 else np.uint16
    Image.fromarray(ids.astype(dtype)).save(path)


def write_instances(out: Path, stem: str, image: np.ndarray, prediction: InstancePrediction,
                    class_names: list[str], min_score: float) -> None:
    """<stem>.png (ids of the instances with score >= min_score) and <stem>_overlay.png."""
    drawn = prediction.confident(min_score)
    save_ids(out / f"{stem}.png", drawn.ids)
    Image.fromarray(instance_overlay(image, drawn, class_names)).save(out / f"{stem}_overlay.png")


def results_entries(image_id: int, file_name: str, prediction: InstancePrediction, category_ids: list[int],
                    min_score: float) -> list[dict]:
    """COCO results entries of every instance, plus file_name and instance_id (0 when not drawn)."""
    entries = coco_results(image_id, prediction.masks, prediction.scores, prediction.labels, category_ids)
    for k, entry in enumerate(entries, start=1):
        entry["file_name"] = file_name
        entry["instance_id"] = k if prediction.scores[k - 1] >= min_score else 0
    return entries
