"""Files panoptic `predict` writes: per image a COCO panoptic PNG and an overlay; one predictions.json.

- `<stem>.png`: segment ids as RGB, id = R + 256 G + 256^2 B (COCO panoptic; seglab.metrics.panoptic.id_to_rgb),
  0 = void;
- `<stem>_overlay.png`: stuff in its class colour, each thing instance in its own colour, instance borders drawn;
- `predictions.json`: COCO panoptic format, {"annotations": [{"image_id", "file_name", "segments_info":
  [{"id", "category_id" (the dataset's id), "area", "bbox" (x, y, w, h), "iscrowd", "score"}]}],
  "categories": [{"id", "name", "isthing", "color"}]}.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.panoptic.spec import compact
from seglab.data.spec import ClassTable
from seglab.inference.instance_outputs import instance_colors, outlines
from seglab.inference.panoptic import PanopticPrediction
from seglab.metrics.panoptic import id_to_rgb

NAMES = "<name>.png COCO panoptic ids (R + 256 G + 256^2 B), <name>_overlay.png, predictions.json (COCO panoptic)"


def panoptic_overlay(image: np.ndarray, prediction: PanopticPrediction, classes: ClassTable, is_thing: list[bool],
                     alpha: float = 0.5) -> np.ndarray:
    """RGB [H, W, 3]: stuff tinted in its class colour, things each in their own colour with their border."""
    ids, segments = compact(prediction.segment_ids, prediction.segments)  # ids 1..S (truth keeps its own ids)
    palette = np.zeros((len(segments) + 1, 3), np.uint8)
    things = [s for s in segments if is_thing[s["category_id"]]]
    thing_colors = instance_colors(len(things))
    for k, segment in enumerate(things):
        palette[segment["id"]] = thing_colors[k]
    for segment in segments:
        if not is_thing[segment["category_id"]]:
            palette[segment["id"]] = classes.colors[segment["category_id"]]
    out = image.astype(np.float32)
    inside = ids > 0
    out[inside] = out[inside] * (1 - alpha) + palette[ids][inside].astype(np.float32) * alpha
    thing_ids = np.where(np.isin(ids, [s["id"] for s in things]), ids, 0)
    edge = outlines(thing_ids)
    out[edge] = palette[ids][edge]
    return out.round().clip(0, 255).astype(np.uint8)


def write_panoptic(out: Path, stem: str, image: np.ndarray, prediction: PanopticPrediction, classes: ClassTable,
                   is_thing: list[bool]) -> None:
    Image.fromarray(id_to_rgb(prediction.segment_ids)).save(out / f"{stem}.png")
    Image.fromarray(panoptic_overlay(image, prediction, classes, is_thing)).save(out / f"{stem}_overlay.png")


def annotation_entry(image_id: int, stem: str, prediction: PanopticPrediction, category_ids: list[int]) -> dict:
    return {"image_id": image_id, "file_name": f"{stem}.png", "segments_info": prediction.segments_info(category_ids)}


def predictions_json(annotations: list[dict], classes: ClassTable, is_thing: list[bool], category_ids: list[int]) -> dict:
    categories = [{"id": int(c), "name": n, "isthing": int(t), "color": list(color)}
                  for c, n, t, color in zip(category_ids, classes.names, is_thing, classes.colors)]
    return {"annotations": annotations, "categories": categories}
