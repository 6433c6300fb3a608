"""Iterative training with simulated clicks (RITM, Sofiiuk et al. 2021), as `Trainer.batch_loss`.

Per batch of objects (one per image):
1. first prompts: with probability BOX_PROBABILITY the object's box (jittered by up to 10% of its
   sides) and no click; otherwise 1-3 positive clicks inside the object (away from its border:
   inner distance at least a third of the largest, or the centre-most pixel, the clicker's own first
   click) and 0-2 negative clicks in a band around it;
2. the first prediction, with gradients: BCE + Dice of the single-mask output (ignored pixels and the
   padding left out), plus, for an ambiguous prompt (one positive click, nothing else: what a user's
   first click is), the best of the three multimask candidates (SAM's minimum over candidates), plus
   the MSE of the predicted IoU of all four outputs. Every batch trains the candidates the first click
   of `seglab val task=prompt` and of the page picks from;
3. 0..MAX_ITERATIONS no-grad rounds: add the click RITM's clicker makes at the largest error region
   (seglab/metrics/clicks.py `next_click`), the prediction fed back as the previous mask, predict;
4. after at least one round, the same loss (single mask and IoU) on the final prediction, added.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from seglab.engine.device import normalize
from seglab.metrics.clicks import Click, next_click

BOX_PROBABILITY = 0.25
# 6 (session 8) made a 60-min run 25-35% slower per image: Pet val NoC@90 2.90 after 9 epochs, against 2.23
# after 11 with 3 (session 7)
MAX_ITERATIONS = 3
NEGATIVE_BAND = 40  # pixels around the object where first negative clicks fall


def first_prompt(mask: np.ndarray, ignore: np.ndarray, rng: np.random.Generator) -> tuple[list[Click], list | None]:
    """(clicks, box or None) for one object (mask bool [S, S])."""
    if not mask.any():
        return [], None
    if rng.random() < BOX_PROBABILITY:
        ys, xs = np.nonzero(mask)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        size = np.repeat([box[2] - box[0], box[3] - box[1]], 2)[[0, 2, 1, 3]]
        return [], list(box + rng.uniform(-0.1, 0.1, 4) * size)
    inner = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    if rng.random() < 0.3:
        first = next_click(mask, np.zeros_like(mask), ignore)
        clicks = [first] if first is not None else []
    else:
        ys, xs = np.nonzero(inner >= inner.max() / 3)
        k = rng.integers(len(ys))
        clicks = [Click(int(ys[k]), int(xs[k]), True)]
    for _ in range(int(rng.choice([0, 0, 1, 2]))):  # extra positive clicks
        ys, xs = np.nonzero(inner > 0)
        k = rng.integers(len(ys))
        clicks.append(Click(int(ys[k]), int(xs[k]), True))
    band = ndimage.binary_dilation(mask, iterations=NEGATIVE_BAND) & ~mask & ~ignore
    ys, xs = np.nonzero(band)
    for _ in range(int(rng.choice([0, 0, 1, 2])) if len(ys) else 0):
        k = rng.integers(len(ys))
        clicks.append(Click(int(ys[k]), int(xs[k]), False))
    return clicks, None


def click_tensors(sessions: list[list[Click]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Click lists -> points float [B, N, 2] (x, y at pixel centres) and labels [B, N] (-1 padding)."""
    n = max(1, max(len(s) for s in sessions))
    points = torch.zeros(len(sessions), n, 2)
    labels = torch.full((len(sessions), n), -1, dtype=torch.int64)
    for b, clicks in enumerate(sessions):
        for i, c in enumerate(clicks):
            points[b, i] = torch.tensor([c.x + 0.5, c.y + 0.5])
            labels[b, i] = int(c.is_positive)
    return points.to(device), labels.to(device)


def box_tensor(boxes: list, device) -> torch.Tensor | None:
    """Per-sample boxes -> [B, 4]; a sample without a box gets an empty one (no cell inside)."""
    if all(b is None for b in boxes):
        return None
    return torch.tensor([b if b is not None else [0, 0, -1, -1] for b in boxes], dtype=torch.float32, device=device)


def full_logits(logits: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[B, C] BCE (mean over valid pixels) + soft Dice per sample and output channel."""
    target, valid = target[:, None].float(), valid[:, None].float()
    bce = F.binary_cross_entropy_with_logits(logits, target.expand_as(logits), reduction="none")
    pixels = valid.sum(dim=(2, 3)).clamp(min=1)
    bce = (bce * valid).sum(dim=(2, 3)) / pixels
    prob = torch.sigmoid(logits) * valid
    dice = 1 - (2 * (prob * target).sum(dim=(2, 3)) + 1) / (prob.sum(dim=(2, 3)) + (target * valid).sum(dim=(2, 3)) + 1)
    return bce + dice


def actual_iou(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    pred = (logits > 0) & valid[:, None]
    truth = (target[:, None] > 0) & valid[:, None]
    inter = (pred & truth).sum(dim=(2, 3)).float()
    union = (pred | truth).sum(dim=(2, 3)).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def corrective_rounds(rng: np.random.Generator) -> int:
    """How many simulated corrective clicks follow the first prompt: 0..MAX_ITERATIONS, uniform."""
    return int(rng.integers(0, MAX_ITERATIONS + 1))


def prediction_loss(logits: torch.Tensor, iou: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                    ambiguous: torch.Tensor) -> torch.Tensor:
    """One prediction's loss (full-size logits [B, 4, S, S]): the single mask on samples with an object, the
    best candidate on ambiguous ones, and the predicted IoU of every output."""
    losses = per_sample_loss(logits, target, valid)
    has_object = (target.flatten(1) > 0).any(dim=1).float()
    loss = (losses[:, 0] * has_object).sum() / has_object.sum().clamp(min=1)
    ambiguous = ambiguous.float() * has_object
    if ambiguous.any():
        loss = loss + (losses[:, 1:].min(dim=1).values * ambiguous).sum() / ambiguous.sum()
    return loss + F.mse_loss(iou.float(), actual_iou(logits.detach(), target, valid))


def prompt_batch_loss(trainer, images: torch.Tensor, targets: dict) -> torch.Tensor:
    """Trainer.batch_loss for click models (images uint8 [B, 3, S, S], targets {"mask", "ignore"})."""
    model, device = trainer.module, trainer.runtime.device
    size = tuple(images.shape[-2:])
    x = normalize(images, trainer.preprocess["mean"], trainer.preprocess["std"], trainer.runtime)
    masks, ignore = targets["mask"].numpy() > 0, targets["ignore"].numpy()
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
    prompts = [first_prompt(m, i, rng) for m, i in zip(masks, ignore)]
    sessions, boxes = [list(c) for c, _ in prompts], [b for _, b in prompts]
    ambiguous = torch.tensor([len(c) == 1 and b is None for c, b in prompts], device=device)
    target = targets["mask"].to(device)
    valid = ~targets["ignore"].to(device)
    box = box_tensor(boxes, device)
    with trainer.runtime.autocast():
        features = model.embed(x)
        points, labels = click_tensors(sessions, device)
        logits, iou = model.decode(features, points, labels, box, None)
    loss = prediction_loss(full_logits(logits, size), iou, target, valid, ambiguous)
    iterations = corrective_rounds(rng)
    if not iterations:
        return loss
    prev = logits[:, :1].detach().float()
    with trainer.runtime.autocast():
        with torch.no_grad():
            for round_ in range(iterations):
                if round_:
                    points, labels = click_tensors(sessions, device)
                    prev = model.decode(features, points, labels, box, prev)[0][:, :1].float()
                predicted = (full_logits(prev, size)[:, 0] > 0).cpu().numpy()
                for b, session in enumerate(sessions):
                    click = next_click(masks[b], predicted[b], ignore[b], session) if masks[b].any() else None
                    if click is not None:
                        session.append(click)
        points, labels = click_tensors(sessions, device)
        logits, iou = model.decode(features, points, labels, box, prev)
    return loss + prediction_loss(full_logits(logits, size), iou, target, valid, torch.zeros_like(ambiguous))
