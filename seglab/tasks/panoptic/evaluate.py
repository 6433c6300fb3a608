"""Scoring a panoptic predictor on a split, through the path `seglab predict` runs, so `val` scores what predict writes.

- resolution="original" (`seglab val`, the final report): every image file goes through `predictor.predict`
  and is scored against its truth as stored, at the image's own size;
- resolution="train" (training-time validation): the dataset's resized samples, scored at that size.
PQ / SQ / RQ with panopticapi's rules (seglab/metrics/panoptic.py), overall, for things, for stuff, per class;
at the original resolution also the thing segments scored as instances ("things_as_instances": mask AP,
matching accuracy; seglab/tasks/panoptic/things_as_instances.py).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from seglab.data.panoptic import PanopticDataset
from seglab.data.panoptic.dataset import checked
from seglab.engine.device import Runtime
from seglab.inference.panoptic import PanopticPredictor
from seglab.metrics.panoptic import PanopticEvaluator
from seglab.tasks.panoptic.things_as_instances import ThingsAsInstances

RESOLUTIONS = ("original", "train")
# metric -> sign (higher is better), the first the default that picks best.pt (the models give losses only in training)
SELECTION_METRICS = {"pq": 1.0, "pq_things": 1.0}
ROW = {"val_pq": "pq", "val_sq": "sq", "val_rq": "rq", "val_pq_things": "pq_things", "val_pq_stuff": "pq_stuff"}


def evaluate(predictor, dataset: PanopticDataset, resolution: str = "original") -> dict:
    """PanopticEvaluator's result plus named per-class tables and the resolution."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution={resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
    split = dataset.split
    evaluator = PanopticEvaluator(split.is_thing, split.classes)
    as_instances = ThingsAsInstances(split.is_thing, split.classes) if resolution == "original" else None
    for index, item in enumerate(split.items):
        if resolution == "original":
            truth = checked(item.load()).as_target()
            prediction = predictor.predict(item.image)
        else:
            if not hasattr(predictor, "predict_view"):
                raise ValueError(f"{predictor.source}: resolution=train needs a network model; use resolution=original")
            image, target, _ = dataset[index]
            truth = {"segment_ids": target["segment_ids"].numpy(), "segments": target["segments"]}
            prediction = predictor.predict_view(image, tuple(image.shape[-2:]))
        evaluator.process(truth, prediction.evaluator_input())
        if as_instances is not None:
            as_instances.process(truth, prediction.evaluator_input())
    result = summary(evaluator.evaluate(), split.classes, split.is_thing, resolution)
    if as_instances is not None:
        result["things_as_instances"] = as_instances.evaluate()
    return result


def summary(result: dict, class_names: list[str], is_thing: list[bool], resolution: str) -> dict:
    per_class = result.pop("per_class")
    classes = {name: {"isthing": bool(thing), **{k: per_class[k][i] for k in ("pq", "sq", "rq", "tp", "fp", "fn")}}
               for i, (name, thing) in enumerate(zip(class_names, is_thing))}
    return {"resolution": resolution, **result, "per_class": classes}


def training_validator(val_set: PanopticDataset, runtime: Runtime, metadata: dict) -> Callable[[nn.Module], dict]:
    """`validate(model)` for the training loop: the in-memory model at the training size; "row" are the
    metrics.csv columns. No val loss (the models give losses only in training mode)."""

    def validate(model: nn.Module) -> dict:
        was_training = model.training
        try:
            metrics = evaluate(PanopticPredictor(model, runtime, metadata), val_set, "train")
        finally:
            model.train(was_training)
        return {"dataset": metrics, "loss": None, "row": {column: metrics[key] for column, key in ROW.items()}}

    return validate


def format_table(metrics: dict) -> str:
    """PQ / SQ / RQ overall, things, stuff, then per class."""
    def cell(value) -> str:
        return "   -  " if value is None else f"{value:6.4f}"

    lines = ["            PQ      SQ      RQ   classes"]
    for label, suffix in (("all", ""), ("things", "_things"), ("stuff", "_stuff")):
        lines.append(f"{label:8s}  " + "  ".join(cell(metrics[f"{k}{suffix}"]) for k in ("pq", "sq", "rq"))
                     + f"  {metrics[f'num_classes{suffix}']:>6d}")
    lines.append("per class:")
    for name, row in metrics["per_class"].items():
        lines.append(f"  {name[:14]:14s} {'thing' if row['isthing'] else 'stuff'}  PQ {cell(row['pq'])}  "
                     f"SQ {cell(row['sq'])}  RQ {cell(row['rq'])}  TP {row['tp']} FP {row['fp']} FN {row['fn']}")
    instances = metrics.get("things_as_instances")
    if instances:
        lines.append(f"things as instances: mask AP {cell(instances['mask_ap'])}  AP50 {cell(instances['mask_ap50'])}  "
                     f"matching accuracy @0.5 {cell(instances['match_accuracy_50'])}")
    lines.append(f"{metrics['num_images']} images")
    return "\n".join(lines)
