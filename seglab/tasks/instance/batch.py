"""One instance training batch: images of different sizes -> one normalised, padded tensor; targets on the device.

Each image is normalised first and then padded bottom / right with 0 (the mean colour, what the models
pad with themselves) to the largest height and width of the batch; its masks are padded with 0 alike.
Crowd instances are left out of the training targets (torchvision's detection references do the same).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seglab.engine.device import normalize

TARGET_KEYS = ("boxes", "labels", "masks")


def padded_batch(images: list[torch.Tensor], mean, std, runtime) -> torch.Tensor:
    """uint8 [3, h_i, w_i] images -> float [N, 3, H, W] normalised, zero (= mean colour) padded."""
    height = max(image.shape[-2] for image in images)
    width = max(image.shape[-1] for image in images)
    x = [F.pad(normalize(image[None], mean, std, runtime), (0, width - image.shape[-1], 0, height - image.shape[-2]))
         for image in images]
    return torch.cat(x).contiguous(memory_format=runtime.memory_format)


def device_targets(targets: list[dict], size: tuple[int, int], device) -> list[dict]:
    """Boxes, labels and masks (padded to `size`) of the non-crowd instances, on `device`."""
    out = []
    for target in targets:
        keep = target["iscrowd"] == 0
        masks = target["masks"][keep]
        masks = F.pad(masks, (0, size[1] - masks.shape[-1], 0, size[0] - masks.shape[-2]))
        out.append({"boxes": target["boxes"][keep].to(device), "labels": target["labels"][keep].to(device),
                    "masks": masks.to(device)})
    return out


def instance_batch_loss(trainer, images: list[torch.Tensor], targets: list[dict]) -> torch.Tensor:
    """Trainer.batch_loss for instance models: the sum of the loss dict the model returns."""
    x = padded_batch(images, trainer.preprocess["mean"], trainer.preprocess["std"], trainer.runtime)
    y = device_targets(targets, tuple(x.shape[-2:]), trainer.runtime.device)
    with trainer.runtime.autocast():
        losses = trainer.model(x, y)
    return sum(loss.float() for loss in losses.values())
