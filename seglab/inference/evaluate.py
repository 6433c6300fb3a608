"""Scoring a model on a dataset split through the Predictor, so `val` scores exactly what `predict` writes.

- resolution="original" (`seglab val`'s default): every image goes through `Predictor.run`, the code
  `seglab predict` runs, with the same InferenceOptions (mode, tile, overlap, blend, tta, scales,
  batch), made from the file the same way (`Job.from_file`); its labels at the image's own size are
  counted against the mask as stored (`load_mask`).
- resolution="train": the fast path of training-time validation for stretch models, the dataset's
  resized samples against the resized masks (seglab/engine/evaluate.py `score_resized`). A crop
  model's training scale is the native one, so for it "train" is "original" (tiled full images).

`training_validator` builds the `validate(model) -> result` callable the training loop is given.
The result dict is the same everywhere: "dataset", "per_image"[, "boundary"], "confusion_matrix",
"resolution"[, "loss"].
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from seglab.data.dataset import SegmentationDataset, load_mask
from seglab.engine.device import Runtime
from seglab.engine.distributed import Group
from seglab.engine.evaluate import RESOLUTIONS, finish, new_metrics, score_resized
from seglab.inference.predictor import InferenceOptions, Job, Predictor

PROBABILITY_FLOOR = 1e-8  # log(0) guard when the loss is computed from blended probabilities


@torch.no_grad()
def evaluate(predictor: Predictor, dataset: SegmentationDataset, resolution: str = "original", loss_fn=None,
             boundary: bool = False, indices=None, group: Group | None = None) -> dict:
    """Metrics of the predictor on `dataset` (`indices`: this process's share; `group`: sum over ranks).

    At the original resolution the loss (when `loss_fn` is given) is that of the predicted
    probabilities at each image's own size (log-probabilities passed as logits, so a softmax-based
    loss sees exactly those probabilities)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution={resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
    device = predictor.runtime.device
    if resolution == "train" and not predictor.native:
        return score_resized(predictor.logits, dataset, predictor.options.batch, loss_fn, boundary, indices,
                             group, device)
    metrics = new_metrics(dataset, boundary)
    order = list(range(len(dataset)) if indices is None else indices)
    step = 1 if predictor.native else predictor.options.batch  # tiled images run one at a time anyway
    loss_sum, count = 0.0, 0
    for start in range(0, len(order), step):
        pairs = [_job_and_truth(dataset, index, predictor.num_classes if loss_fn else 0)
                 for index in order[start:start + step]]
        labels = predictor.run([job for job, _ in pairs])
        for (job, truth), image_labels in zip(pairs, labels):
            metrics.update(torch.from_numpy(image_labels).long()[None], truth[None])
            if loss_fn is not None:
                log_probs = torch.from_numpy(job.probs_out).clamp_min(PROBABILITY_FLOOR).log()[None]
                loss_sum += float(loss_fn(log_probs.to(device), truth[None].to(device)))
                count += 1
    return finish(metrics, "original", loss_sum, count, loss_fn, group, device)


def _job_and_truth(dataset: SegmentationDataset, index: int, probs_classes: int) -> tuple[Job, torch.Tensor]:
    """The Job predict would make for pair `index`, and its mask as stored (int64 [H, W]).

    A crop dataset holds its pairs at native resolution (decoded as `Job.from_file` decodes them, and
    cached when the dataset caches); a crop model never resamples, so the job needs no source file."""
    if dataset.native:
        image, mask = dataset.sample(index)
        job, truth = Job(image.permute(1, 2, 0).numpy()), mask.long()
    else:
        job = Job.from_file(dataset.spec.pairs[index][0])
        truth = torch.from_numpy(load_mask(dataset.spec, index)).long()
    if probs_classes:
        job.probs_out = np.zeros((probs_classes, *job.image.shape[:2]), dtype=np.float32)
    return job, truth


def training_validator(val_set: SegmentationDataset, runtime: Runtime, preprocess: dict, batch: int,
                       loss_fn=None, group: Group | None = None,
                       options: InferenceOptions | None = None) -> Callable[[nn.Module], dict]:
    """`validate(model) -> result` for the training loop, on this process's share of `val_set`.

    Stretch models (preprocess resize=stretch): the fast resolution=train path on the cached resized
    samples. Crop models: every val image tiled at native scale through a Predictor around the
    in-memory model (`options`, default InferenceOptions(batch=batch)). The model is scored as it is
    (no BatchNorm folding, no copy) and put back in the mode it was in."""
    group = group or Group()
    indices = range(group.rank, len(val_set), group.world_size)
    metadata = {"classes": val_set.spec.classes, "preprocess": preprocess}
    options = options or InferenceOptions(batch=batch)

    def validate(model: nn.Module) -> dict:
        was_training = model.training
        try:
            predictor = Predictor(model, runtime, options, fuse=False, metadata=metadata)
            return evaluate(predictor, val_set, "train", loss_fn, indices=indices, group=group)
        finally:
            model.train(was_training)

    return validate
