"""Hungarian matching of queries to ground-truth segments, on masks compared at sampled points.

Points: each segment gets its own `count` pixels, half uniform in its bounding box grown by a margin
(so a nucleus of a few pixels is sampled at all, its inside and its rim), half uniform over the image.
Truth is read exactly at those pixels; the predicted mask logits (at the pixel decoder's stride) are
sampled bilinearly at the pixel centres. Void pixels get weight 0.

Cost of query q for segment m (DETR / Mask2Former):
    class_weight * (-p_q(class_m)) + mask_weight * BCE(q, m) + dice_weight * (1 - Dice(q, m)),
with BCE the weighted mean over m's points and Dice = (2 sum p g + 1) / (sum p + sum g + 1).
The assignment minimising the total cost is scipy.optimize.linear_sum_assignment's (rectangular:
min(Q, M) pairs; with fewer queries than segments some segments stay unmatched).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

BOX_MARGIN = 0.25  # of the box's side, and at least 2 pixels, on each side
CHUNK = 64  # segments per block of the cost computation (bounds memory at Q x CHUNK x points)


@dataclass
class Points:
    """Per segment: pixel coordinates `xy` long [M, P, 2] (x, y), truth `values` float [M, P] (0 / 1)
    and `weights` float [M, P] (0 on void pixels)."""

    xy: torch.Tensor
    values: torch.Tensor
    weights: torch.Tensor

    def take(self, index: torch.Tensor) -> "Points":
        return Points(self.xy[index], self.values[index], self.weights[index])


def segment_boxes(masks: torch.Tensor) -> torch.Tensor:
    """bool [M, H, W] -> long [M, 4] (x0, y0, x1, y1), x1 / y1 exclusive (empty masks: the whole image)."""
    height, width = masks.shape[-2:]
    rows, cols = masks.any(2), masks.any(1)

    def span(line: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = line.int().argmax(1)
        end = size - line.flip(1).int().argmax(1)
        empty = ~line.any(1)
        return torch.where(empty, 0, start), torch.where(empty, size, end)

    y0, y1 = span(rows, height)
    x0, x1 = span(cols, width)
    return torch.stack([x0, y0, x1, y1], 1)


def sample_points(segments: dict, count: int, generator: torch.Generator | None = None) -> Points:
    masks, valid = segments["masks"], segments["valid"]
    m, (height, width) = masks.shape[0], masks.shape[-2:]
    device = masks.device
    boxes = segment_boxes(masks).float()
    size = boxes[:, 2:] - boxes[:, :2]
    margin = torch.clamp(size * BOX_MARGIN, min=2.0)
    low = torch.clamp(boxes[:, :2] - margin, min=0)
    high = torch.minimum(boxes[:, 2:] + margin, torch.tensor([width, height], device=device, dtype=torch.float32))
    in_box = count // 2
    u = torch.rand(m, count, 2, generator=generator, device=device)
    span = torch.cat([(high - low)[:, None].expand(m, in_box, 2),
                      torch.tensor([width, height], device=device, dtype=torch.float32).expand(m, count - in_box, 2)], 1)
    start = torch.cat([low[:, None].expand(m, in_box, 2), torch.zeros(m, count - in_box, 2, device=device)], 1)
    xy = (start + u * span).floor().long()
    xy[..., 0].clamp_(0, width - 1)
    xy[..., 1].clamp_(0, height - 1)
    x, y = xy[..., 0], xy[..., 1]
    values = masks[torch.arange(m, device=device)[:, None], y, x].float()
    return Points(xy, values, valid[y, x].float())


def grid(xy: torch.Tensor, padded: tuple[int, int]) -> torch.Tensor:
    """Pixel coordinates -> grid_sample's [-1, 1] (align_corners=False: pixel centres of the padded input)."""
    scale = torch.tensor([padded[1], padded[0]], device=xy.device, dtype=torch.float32)
    return (xy.float() + 0.5) / scale * 2 - 1


def logits_at(mask_logits: torch.Tensor, xy: torch.Tensor, padded: tuple[int, int]) -> torch.Tensor:
    """Mask logits [Q, h, w] at points [M, P, 2] -> [Q, M, P] (every query at every segment's points)."""
    return F.grid_sample(mask_logits[None].float(), grid(xy, padded)[None], mode="bilinear",
                         align_corners=False)[0]


def pair_logits(mask_logits: torch.Tensor, xy: torch.Tensor, padded: tuple[int, int]) -> torch.Tensor:
    """Mask logits [M, h, w] of M matched queries at their own segments' points [M, P, 2] -> [M, P]."""
    return F.grid_sample(mask_logits[:, None].float(), grid(xy, padded)[:, None], mode="bilinear",
                         align_corners=False)[:, 0, 0]


def mask_costs(logits: torch.Tensor, points: Points) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [..., P] against the points' truth -> (weighted-mean BCE, 1 - Dice), each [...]."""
    g, w = points.values, points.weights
    bce = ((F.softplus(logits) - logits * g) * w).sum(-1) / w.sum(-1).clamp_min(1.0)
    p = torch.sigmoid(logits) * w
    dice = 1 - (2 * (p * g).sum(-1) + 1) / (p.sum(-1) + (g * w).sum(-1) + 1)
    return bce, dice


@torch.no_grad()
def cost_matrix(class_logits: torch.Tensor, mask_logits: torch.Tensor, labels: torch.Tensor, points: Points,
                padded: tuple[int, int], weights: dict) -> torch.Tensor:
    """float [Q, M]: the matching cost of every query (class logits [Q, K + 1], mask logits [Q, h, w]) and segment."""
    probs = class_logits.float().softmax(-1)
    cost = -weights["class"] * probs[:, labels]
    for start in range(0, len(labels), CHUNK):
        part = slice(start, start + CHUNK)
        bce, dice = mask_costs(logits_at(mask_logits, points.xy[part], padded), points.take(part))
        cost[:, part] += weights["mask"] * bce + weights["dice"] * dice
    return cost


def hungarian(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(query indices, segment indices) of the minimum-cost assignment of a [Q, M] cost matrix."""
    if cost.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=cost.device)
        return empty, empty
    matrix = np.nan_to_num(cost.detach().float().cpu().numpy(), nan=1e6, posinf=1e6, neginf=-1e6)
    rows, cols = linear_sum_assignment(matrix)
    return (torch.as_tensor(rows, dtype=torch.long, device=cost.device),
            torch.as_tensor(cols, dtype=torch.long, device=cost.device))
