"""Each task's training targets -> the segments the queries are matched to.

A segment list per image: {"labels": int64 [M] (0-based class), "masks": bool [M, H, W],
"valid": bool [H, W] (False: void pixels, which no mask loss sees)}.
- semantic: class-id map [H, W] -> one segment per class present; ids outside 0..K-1 (the ignore
  index, padding) are void;
- instance: torchvision-style {"boxes", "labels" (1-based), "masks"} -> one segment per instance;
  every pixel is valid (pixels of no instance are the "no object" background);
- panoptic: {"semantic" [H, W] (255 void), "instances" [H, W] (0 none, k > 0 a thing)} -> one segment
  per stuff class present and one per thing instance (its class: the most frequent semantic class
  under it); a thing-class pixel outside every instance is void.
"""

from __future__ import annotations

import torch


def semantic_segments(labels: torch.Tensor, num_classes: int) -> dict:
    labels = labels.long()
    valid = (labels >= 0) & (labels < num_classes)
    counts = torch.bincount(torch.where(valid, labels, num_classes).flatten(), minlength=num_classes + 1)
    present = torch.nonzero(counts[:num_classes]).squeeze(1)  # (bincount: no sort of every pixel, as unique does)
    return {"labels": present, "masks": labels[None] == present[:, None, None], "valid": valid}


def instance_segments(target: dict, num_classes: int) -> dict:
    masks, labels = target["masks"].bool(), target["labels"].long().reshape(-1) - 1
    if masks.ndim == 4:  # [M, 1, H, W]
        masks = masks[:, 0]
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"instance labels must be 1..{num_classes} (0 is the background), got "
                         f"{sorted(set((labels + 1).tolist()))}")
    valid = torch.ones(masks.shape[-2:], dtype=torch.bool, device=masks.device)
    return {"labels": labels, "masks": masks, "valid": valid}


def panoptic_segments(target: dict, is_thing: list[bool]) -> dict:
    semantic, instances = target["semantic"].long(), target["instances"].long()
    num_classes = len(is_thing)
    thing = torch.tensor(is_thing, dtype=torch.bool, device=semantic.device)
    valid = (semantic >= 0) & (semantic < num_classes)
    is_thing_pixel = torch.zeros_like(valid)
    is_thing_pixel[valid] = thing[semantic[valid]]
    valid = valid & ~(is_thing_pixel & (instances == 0))
    stuff = torch.unique(semantic[valid & ~is_thing_pixel])
    ids = torch.unique(instances[instances > 0])
    thing_masks = instances[None] == ids[:, None, None]
    if len(ids):  # each instance's class: the most frequent valid class under it
        index = torch.searchsorted(ids, instances[valid & (instances > 0)])
        counts = torch.bincount(index * num_classes + semantic[valid & (instances > 0)],
                                minlength=len(ids) * num_classes).reshape(len(ids), num_classes)
        thing_labels = counts.argmax(1)
    else:
        thing_labels = ids
    masks = torch.cat([semantic[None] == stuff[:, None, None], thing_masks]) & valid
    keep = masks.flatten(1).any(1)  # an instance entirely on void (e.g. crowd) is no segment
    return {"labels": torch.cat([stuff, thing_labels])[keep], "masks": masks[keep], "valid": valid}
