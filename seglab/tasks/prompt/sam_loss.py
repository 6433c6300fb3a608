"""SAM's training step on cached image embeddings with simulated prompts, as `Trainer.batch_loss`.

The batch is `(embeddings [B, 256, 64, 64], {"mask", "ignore"} [B, 256, 256])`: one object per image, its
mask on the 256 x 256 low-resolution frame, which is SAM's 1024 x 1024 input frame (longer side resized,
padded bottom / right) divided by 4, so a pixel (x, y) of it is (4 x, 4 y) in SAM's input. Per object:
1. the first prompt of the click model's simulator (simulate.first_prompt: a jittered box, or 1-3
   positive and 0-2 negative clicks);
2. 0..MAX_ITERATIONS no-grad rounds: decode (the first prompt multimask when ambiguous, the candidate
   with the best predicted IoU kept, as seglab's click benchmark does), add the click RITM's clicker
   makes at the largest error region, and feed the low-res logits back as `mask_input`;
3. the loss of the final decode, SAM's: 20 x focal + dice of the mask (for an ambiguous prompt, one
   click and nothing else, the lowest of its three candidates), plus the MSE between the predicted
   IoU and each output's actual IoU. Ignored pixels (trimap border, padding) are left out.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import sigmoid_focal_loss

from seglab.metrics.clicks import Click, next_click
from seglab.models.prompt.sam_decoder import INPUT_SIZE
from seglab.prompt.backend import LOW_RES
from seglab.tasks.prompt.simulate import MAX_ITERATIONS, actual_iou, first_prompt

SCALE = INPUT_SIZE / LOW_RES  # low-res frame pixels -> SAM input pixels
FOCAL_WEIGHT = 20.0  # SAM's focal : dice ratio


def sam_prompts(clicks: list[Click], box, device):
    """A session's clicks / box (low-res frame) -> SAM's points [1, N, 2], labels [1, N], boxes [1, 4] or None."""
    points = labels = boxes = None
    if clicks:
        points = torch.tensor([[[c.x * SCALE, c.y * SCALE] for c in clicks]], dtype=torch.float32, device=device)
        labels = torch.tensor([[int(c.is_positive) for c in clicks]], dtype=torch.int64, device=device)
    if box is not None:
        boxes = torch.tensor([box], dtype=torch.float32, device=device) * SCALE
    return points, labels, boxes


def mask_losses(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[C]: FOCAL_WEIGHT x focal (mean over valid pixels) + soft Dice of each candidate [C, H, W] against target [H, W]."""
    target, valid = target.float().expand_as(logits), valid.float().expand_as(logits)
    pixels = valid[0].sum().clamp(min=1)
    focal = (sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="none") * valid).sum(dim=(1, 2)) / pixels
    prob = torch.sigmoid(logits) * valid
    dice = 1 - (2 * (prob * target).sum(dim=(1, 2)) + 1) / (prob.sum(dim=(1, 2)) + (target * valid).sum(dim=(1, 2)) + 1)
    return FOCAL_WEIGHT * focal + dice


def simulate_session(decoder, embedding: torch.Tensor, mask: np.ndarray, ignore: np.ndarray,
                     rng: np.random.Generator):
    """One object's prompts after its no-grad corrective rounds: (clicks, box, previous low-res logits | None, multimask)."""
    clicks, box = first_prompt(mask, ignore, rng)
    clicks = list(clicks)
    ambiguous = len(clicks) == 1 and box is None
    previous = None
    with torch.no_grad():
        for _ in range(int(rng.integers(0, MAX_ITERATIONS + 1))):
            points, labels, boxes = sam_prompts(clicks, box, embedding.device)
            logits, iou = decoder.decode(embedding, points, labels, boxes, previous, previous is None and ambiguous)
            best = int(iou[0].argmax())
            previous = logits[:, best:best + 1].float()
            click = next_click(mask, previous[0, 0].cpu().numpy() > 0, ignore, clicks)
            if click is None:
                break
            clicks.append(click)
    return clicks, box, previous, previous is None and ambiguous


def sam_batch_loss(trainer, embeddings: torch.Tensor, targets: dict) -> torch.Tensor:
    """Trainer.batch_loss for a SamDecoder (trainer.module) on cached embeddings."""
    decoder, device = trainer.module, trainer.runtime.device
    masks, ignores = targets["mask"].numpy() > 0, targets["ignore"].numpy()
    target, valid = targets["mask"].to(device), ~targets["ignore"].to(device)
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
    losses = []
    for b in range(len(embeddings)):
        if not masks[b].any():  # an image without a usable object: nothing to learn from it
            continue
        embedding = embeddings[b:b + 1].to(device, non_blocking=True)
        with trainer.runtime.autocast():
            clicks, box, previous, multimask = simulate_session(decoder, embedding, masks[b], ignores[b], rng)
            points, labels, boxes = sam_prompts(clicks, box, device)
            logits, iou = decoder.decode(embedding, points, labels, boxes, previous, multimask)
        logits, iou = logits[0].float(), iou[0].float()
        mask_loss = mask_losses(logits, target[b], valid[b]).min()  # single output: its only value
        truth = actual_iou(logits[None].detach(), target[b:b + 1], valid[b:b + 1])[0]
        losses.append(mask_loss + torch.mean((iou - truth) ** 2))
    if not losses:
        return torch.zeros((), device=device, requires_grad=True)
    return torch.stack(losses).mean()
