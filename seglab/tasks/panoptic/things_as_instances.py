"""A panoptic prediction's thing segments scored as instance segmentation (COCO mask AP, matching accuracy).

MaskFormer's point is that one head gives semantic, instance and panoptic results; Panoptic-DeepLab and the
fusion give instances too. `seglab val task=panoptic` therefore also scores each image's thing segments, with
their scores, against the truth's thing segments by seglab.metrics.InstanceEvaluator, so a panoptic model is
compared with the instance models on the instance task's own numbers (mask AP, AP50, matching accuracy at
IoU 0.5 ... 0.9). A panoptic map keeps only the segments its model decided on, so matching counts every kept
segment (score threshold 0); crowd truths are ignored regions as in COCO.
"""

from __future__ import annotations

import numpy as np

from seglab.metrics.instance import InstanceEvaluator

MAX_DETECTIONS = 1000  # COCOeval's last maxDets: a panoptic map of nuclei holds a few hundred things


def thing_classes(is_thing: list[bool]) -> list[int]:
    """The panoptic class indices that are things, in order: instance label k is the k-th of them."""
    return [c for c, thing in enumerate(is_thing) if thing]


def as_instances(segment_ids: np.ndarray, segments: list[dict], things: list[int], with_scores: bool) -> dict:
    """The thing segments of a canonical panoptic map as InstanceEvaluator input (masks, labels, iscrowd / scores)."""
    label_of = {c: k for k, c in enumerate(things)}
    kept = [s for s in segments if s["category_id"] in label_of]
    masks = (np.stack([segment_ids == s["id"] for s in kept]) if kept
             else np.zeros((0, *segment_ids.shape), dtype=bool))
    out = {"masks": masks, "labels": np.array([label_of[s["category_id"]] for s in kept], dtype=np.int64)}
    if with_scores:
        out["scores"] = np.array([float(s.get("score", 1.0)) for s in kept], dtype=np.float64)
    else:
        out["iscrowd"] = np.array([bool(s.get("iscrowd", 0)) for s in kept], dtype=bool)
    return out


class ThingsAsInstances:
    """Streams (truth, prediction) canonical panoptic pairs into an InstanceEvaluator over the thing classes."""

    def __init__(self, is_thing: list[bool], class_names: list[str]):
        self.things = thing_classes(is_thing)
        self.names = [class_names[c] for c in self.things]
        self.evaluator = (InstanceEvaluator(len(self.things), score_threshold=0.0, max_detections=MAX_DETECTIONS)
                          if self.things else None)

    def process(self, truth: dict, prediction: dict) -> None:
        if self.evaluator is None:
            return
        self.evaluator.process(as_instances(truth["segment_ids"], truth["segments"], self.things, False),
                               as_instances(prediction["segment_ids"], prediction["segments"], self.things, True))

    def evaluate(self) -> dict | None:
        """InstanceEvaluator's result (per-image list kept), mask AP per class named; None without thing classes."""
        if self.evaluator is None:
            return None
        result = self.evaluator.evaluate()
        for key in ("mask_ap_per_class", "box_ap_per_class"):
            result[key] = dict(zip(self.names, result[key]))
        return result
