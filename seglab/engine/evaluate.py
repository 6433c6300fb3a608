"""Evaluation of a model on a dataset split, at the training size or at each image's own size."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset

from seglab.data.dataset import SegmentationDataset, load_mask
from seglab.engine.device import Runtime, normalize
from seglab.engine.distributed import Group, all_reduce_sum
from seglab.inference.predictor import labels_at_size
from seglab.metrics import SegmentationMetrics

RESOLUTIONS = ("original", "train")


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: SegmentationDataset, runtime: Runtime, preprocess: dict,
             batch: int = 8, loss_fn=None, resolution: str = "train", boundary: bool = False,
             indices=None, group: Group | None = None) -> dict:
    """Metrics sections (dataset, per_image[, boundary]) plus "loss" when loss_fn is given.

    resolution="train" scores the resized masks; "original" resizes each image's logits back to
    its own size before argmax and scores the mask as stored, as `predict` would write it.
    `indices` restricts the images (a DDP rank's share); with `group`, counts are summed over ranks.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution={resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
    classes = dataset.spec.classes
    metrics = SegmentationMetrics(classes.num_classes, classes.ignore_index, boundary=boundary)
    was_training = model.training
    model.eval()
    loss_sum, count = 0.0, 0
    subset = dataset if indices is None else Subset(dataset, list(indices))
    for images, masks, index_batch in DataLoader(subset, batch_size=batch, shuffle=False):
        x = normalize(images, preprocess["mean"], preprocess["std"], runtime)
        with runtime.autocast():
            logits = model(x)
        logits = logits.float()
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits, masks.to(runtime.device))) * len(images)
            count += len(images)
        if resolution == "train":
            metrics.update(logits.argmax(1).cpu(), masks)
            continue
        for image_logits, index in zip(logits, index_batch.tolist()):
            truth = torch.from_numpy(load_mask(dataset.spec, index)).long()
            metrics.update(labels_at_size(image_logits, truth.shape).cpu()[None], truth[None])
    model.train(was_training)
    if group is not None and group.active:
        metrics.all_reduce()
        loss_sum, count = all_reduce_sum([loss_sum, count], group, runtime.device)
    out = metrics.compute()
    out["resolution"] = resolution
    if loss_fn is not None:
        out["loss"] = loss_sum / max(count, 1)
    return out


def summary(result: dict, class_names: list[str]) -> dict:
    """The headline numbers of `evaluate` flattened, per-class values keyed by class name."""
    data = result["dataset"]
    out = {k: data[k] for k in ("pixel_accuracy", "mean_class_accuracy", "miou", "mean_dice", "fwiou")}
    for key in ("iou_per_class", "dice_per_class", "precision_per_class", "recall_per_class", "pixel_share"):
        out[key] = dict(zip(class_names, data[key]))
    if "boundary" in result:
        out["boundary_f1"] = result["boundary"]["bf"]
        out["bf_per_class"] = dict(zip(class_names, result["boundary"]["bf_per_class"]))
    out["per_image"] = {k: result["per_image"].get(k) for k in ("pixel_accuracy", "miou", "mean_dice")}
    out["resolution"] = result["resolution"]
    if "loss" in result:
        out["loss"] = result["loss"]
    return out
