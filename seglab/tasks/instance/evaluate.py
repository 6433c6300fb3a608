"""Scoring an instance model on a split through the InstancePredictor, so `val` scores what `predict` writes.

- resolution="original" (`seglab val`, the final report): every image file goes through
  `InstancePredictor.predict` (what `seglab predict` runs) and is scored against its instances as
  stored, at the image's own size;
- resolution="train" (training-time validation): the dataset's resized samples, scored at that size; with
  the dataset's `object_size`, each image at its truth's scale through the tiling path, scored at its own
  size (a 1024 px image at 1.3x is tiled, not forwarded whole).
COCO mask / box AP count every kept detection (score >= score_threshold: predictions.json); matching
accuracy counts the instances with score >= min_score (the id PNG's).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from seglab.data.instance import InstanceDataset
from seglab.engine.device import Runtime
from seglab.inference.instance import InstanceOptions, InstancePredictor
from seglab.metrics.instance import InstanceEvaluator

RESOLUTIONS = ("original", "train")
# metric -> sign (higher is better), the first the default that picks best.pt. No "loss": the models give
# losses only in training mode, so there is no val loss to select by.
SELECTION_METRICS = {"mask_ap": 1.0, "mask_ap50": 1.0, "matching_accuracy": 1.0}
ROW = {"val_mask_ap": "mask_ap", "val_mask_ap50": "mask_ap50", "val_box_ap": "box_ap",
       "val_matching_accuracy": "matching_accuracy"}  # metrics.csv column -> metric


def _truth_at_original_size(dataset: InstanceDataset, index: int) -> dict:
    item = dataset.split.items[index]
    instances = item.load()
    return {"masks": instances.masks, "labels": instances.labels, "iscrowd": instances.iscrowd, "image_id": item.name}


def evaluate(predictor: InstancePredictor, dataset: InstanceDataset, resolution: str = "original") -> dict:
    """The metrics of `predictor` on `dataset` (InstanceEvaluator.evaluate() plus named summaries)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution={resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
    options = predictor.options
    evaluator = InstanceEvaluator(dataset.split.num_classes, score_threshold=options.min_score,
                                  max_detections=options.max_detections)
    for index in range(len(dataset)):
        if resolution == "original":
            truth = _truth_at_original_size(dataset, index)
            prediction = predictor.predict(dataset.split.items[index].image)
        elif dataset.object_size:
            truth = _truth_at_original_size(dataset, index)
            prediction = predictor.predict_at(dataset.split.items[index].image, dataset.truth_scale(index))
        else:
            image, target, _ = dataset[index]
            truth = {"masks": target["masks"].numpy(), "labels": target["labels"].numpy() - 1,
                     "iscrowd": target["iscrowd"].numpy(), "image_id": dataset.split.items[index].name}
            prediction = predictor.predict_view(image, tuple(image.shape[-2:]))
        evaluator.process(truth, prediction.evaluator_input())
    return summary(evaluator.evaluate(), dataset.split.classes, resolution)


def summary(result: dict, class_names: list[str], resolution: str) -> dict:
    """The evaluator's result with the selection names (`matching_accuracy` = at IoU 0.5) and named classes."""
    out = {"resolution": resolution, "mask_ap": result["mask_ap"], "mask_ap50": result["mask_ap50"],
           "mask_ap75": result["mask_ap75"], "matching_accuracy": result["match_accuracy_50"]}
    for prefix in ("mask", "box"):
        result[f"{prefix}_ap_per_class"] = dict(zip(class_names, result[f"{prefix}_ap_per_class"]))
    return {**out, **result}


def training_validator(val_set: InstanceDataset, runtime: Runtime, preprocess: dict, classes,
                       options: InstanceOptions) -> Callable[[nn.Module], dict]:
    """`validate(model)` for the training loop: the in-memory model at the training size; "row" are the
    metrics.csv columns. There is no val loss (the models give losses only in training mode)."""
    metadata = {"classes": classes, "preprocess": preprocess}

    def validate(model: nn.Module) -> dict:
        was_training = model.training
        try:
            metrics = evaluate(InstancePredictor(model, runtime, options, metadata), val_set, "train")
        finally:
            model.train(was_training)
        return {"dataset": metrics, "loss": None, "row": {column: metrics[key] for column, key in ROW.items()}}

    return validate


def format_table(metrics: dict) -> str:
    """A short table: COCO AP (mask, box), and matching accuracy at each IoU threshold."""
    def cell(value) -> str:
        return "   -  " if value is None else f"{value:6.4f}"

    lines = ["         AP      AP50    AP75    AP_s    AP_m    AP_l",
             *(f"{prefix:5s} " + "  ".join(cell(metrics[f"{prefix}_{k}"]) for k in
                                          ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"))
               for prefix in ("mask", "box"))]
    matching = metrics["matching"]
    lines.append("matching accuracy (score >= {}): ".format(matching["score_threshold"]) + "  ".join(
        f"@{t:.1f} {cell(a).strip()}" for t, a in zip(matching["thresholds"], matching["accuracy"])))
    lines.append(f"{metrics['num_images']} images, {metrics['num_gt']} objects, {metrics['num_pred']} detections")
    return "\n".join(lines)
