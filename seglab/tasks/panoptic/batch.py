"""One panoptic training batch: images of different sizes -> one normalised, padded tensor; per image a semantic map
and an instance map on the device (the contract of seglab/models/panoptic/__init__.py).

Images are normalised and padded bottom / right with 0 (the mean colour) to the largest height and width of the
batch, rounded up to the model's `multiple` (seglab/tasks/instance/batch.py `padded_batch`). Targets:
  "semantic"  int64 [H, W]: the 0-based class of each pixel; 255 on void, crowd segments and padding;
  "instances" int64 [H, W]: 0 = no thing instance (stuff, void, crowd, padding), k > 0 = the k-th thing instance.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from seglab.tasks.instance.batch import padded_batch

IGNORE = 255


def target_maps(target: dict, is_thing: list[bool], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(semantic, instances) int64 [H, W] of one canonical target, padded to `size`."""
    ids = target["segment_ids"].long()
    count = int(ids.max()) + 1 if ids.numel() else 1
    semantic_of = torch.full((max(count, 1),), IGNORE, dtype=torch.int64)
    instance_of = torch.zeros(max(count, 1), dtype=torch.int64)
    things = 0
    for segment in target["segments"]:
        if segment.get("iscrowd", 0) or segment["id"] >= count:
            continue
        semantic_of[segment["id"]] = segment["category_id"]
        if is_thing[segment["category_id"]]:
            things += 1
            instance_of[segment["id"]] = things
    semantic, instances = semantic_of[ids], instance_of[ids]
    pad = (0, size[1] - ids.shape[-1], 0, size[0] - ids.shape[-2])
    return F.pad(semantic, pad, value=IGNORE), F.pad(instances, pad, value=0)


def padded_to_multiple(images: list[torch.Tensor], multiple: int) -> list[torch.Tensor]:
    """Grow the first image (with zeros at the bottom / right) so the batch's padded size is a multiple."""
    height = max(i.shape[-2] for i in images)
    width = max(i.shape[-1] for i in images)
    grow = (-height % multiple, -width % multiple)
    if not any(grow):
        return images
    first = F.pad(images[0], (0, width - images[0].shape[-1] + grow[1], 0, height - images[0].shape[-2] + grow[0]))
    return [first, *images[1:]]


def batch_inputs(trainer, images: list[torch.Tensor], targets: list[dict], is_thing: list[bool]):
    """(x float [N, 3, H, W], targets) as the model takes them in training."""
    multiple = int(getattr(trainer.module, "multiple", 1))
    x = padded_batch(padded_to_multiple(images, multiple), trainer.preprocess["mean"], trainer.preprocess["std"],
                     trainer.runtime)
    size = tuple(x.shape[-2:])
    device = trainer.runtime.device
    maps = [target_maps(t, is_thing, size) for t in targets]
    return x, [{"semantic": s.to(device), "instances": i.to(device)} for s, i in maps]


def panoptic_batch_loss(trainer, images: list[torch.Tensor], targets: list[dict], is_thing: list[bool]) -> torch.Tensor:
    """Trainer.batch_loss for panoptic models: the sum of the loss dict the model returns."""
    x, y = batch_inputs(trainer, images, targets, is_thing)
    with trainer.runtime.autocast():
        losses = trainer.model(x, y)
    return sum(loss.float() for loss in losses.values())


def batch_loss_for(is_thing: list[bool]):
    return partial(panoptic_batch_loss, is_thing=[bool(t) for t in is_thing])
