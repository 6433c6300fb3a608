"""Training the memory tracker on simulated clips (seglab/data/video/simulated_clips.py), as `Trainer.batch_loss`.

Per clip of K frames: every frame is embedded once (with gradients); frame 0 is the anchor, remembered with
its true mask. Frame t = 1..K-1 is decoded with the memory of the anchor and of frame t-1, where frame t-1's
mask is what a tracker would hand on: for t = 1 the clip's `given` mask (a perturbed copy of frame 0's
truth), for t > 1 either the model's own prediction on frame t-1 (detached; probability
`OWN_PREDICTION`) or the clip's perturbed truth. As at inference (seglab/video/memory_propagator.py) the
decode also gets that mask's box, innermost point and logits. Loss per frame: BCE + Dice of the single
mask (ignored pixels left out; frames where the object is gone skipped) + the MSE of its predicted IoU,
averaged over the tracked frames.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from seglab.engine.device import normalize
from seglab.tasks.prompt.simulate import actual_iou, full_logits, per_sample_loss
from seglab.video.prompts import from_mask

OWN_PREDICTION = 0.5
MASK_LOGIT = 10.0
NO_BOX = [0.0, 0.0, -1.0, -1.0]


def mask_prompts(masks: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """bool [B, S, S] -> (points [B, 1, 2], labels [B, 1], boxes [B, 4]) as the propagator derives them
    (a point names a pixel, so its model-input coordinate is its centre: + 0.5, as the backend adds)."""
    points, labels, boxes = [], [], []
    for mask in masks:
        prompt = from_mask(mask)
        points.append(prompt.points + 0.5 if prompt is not None else np.zeros((1, 2), np.float32))
        labels.append(prompt.labels if prompt is not None else np.full(1, -1, np.int64))
        boxes.append(prompt.box if prompt is not None else np.array(NO_BOX, np.float32))
    as_tensor = lambda xs: torch.from_numpy(np.stack(xs)).to(device)
    return as_tensor(points), as_tensor(labels), as_tensor(boxes)


def frame_features(features: dict, batch: int, frames: int, t: int) -> dict:
    return {k: v.view(batch, frames, *v.shape[1:])[:, t] for k, v in features.items()}


def clip_batch_loss(trainer, clips: torch.Tensor, targets: dict) -> torch.Tensor:
    """clips uint8 [B, K, 3, S, S]; targets {"masks", "ignore", "given"} [B, K, S, S]."""
    model, device = trainer.module, trainer.runtime.device
    batch, frames = clips.shape[:2]
    size = tuple(clips.shape[-2:])
    truth = targets["masks"].to(device).float()
    valid = ~targets["ignore"].to(device)
    given = targets["given"].numpy() > 0
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
    x = normalize(clips.flatten(0, 1), trainer.preprocess["mean"], trainer.preprocess["std"], trainer.runtime)
    total = 0.0
    with trainer.runtime.autocast():
        features = model.embed(x)
        anchor = model.memory_entry(frame_features(features, batch, frames, 0), truth[:, :1])
        own = None  # the model's (detached) logits on the frame before
        for t in range(1, frames):
            if own is not None and rng.random() < OWN_PREDICTION:
                prev_logits = own
                prev_mask = (full_logits(own, size)[:, 0] > 0).cpu().numpy()
            else:
                prev_mask = given[:, t]
                prev_logits = (torch.from_numpy(prev_mask).to(device)[:, None].float() * 2 - 1) * MASK_LOGIT
            before = model.memory_entry(frame_features(features, batch, frames, t - 1), torch.sigmoid(prev_logits))
            memory = {"keys": torch.stack([anchor[0], before[0]], dim=1),
                      "masks": torch.stack([anchor[1], before[1]], dim=1)}
            points, labels, boxes = mask_prompts(prev_mask, device)
            logits, iou = model.decode(frame_features(features, batch, frames, t), points, labels, boxes,
                                       prev_logits, memory)
            single = full_logits(logits[:, :1], size)
            target, keep = truth[:, t], valid[:, t]
            present = (target.flatten(1) > 0).any(dim=1).float()
            losses = per_sample_loss(single, target, keep)[:, 0]
            total = total + (losses * present).sum() / present.sum().clamp(min=1)
            total = total + F.mse_loss(iou[:, :1].float(), actual_iou(single.detach(), target, keep))
            own = logits[:, :1].detach().float()
    return total / (frames - 1)
