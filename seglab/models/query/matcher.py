"""Hungarian matching of queries to ground-truth segments, on masks compared at sampled points.

Points for the matching cost (`matching_points`, Mask2Former's shared point set): one set per image shared
by every (query, segment) pair, `count` pixels uniform over the image plus `BOX_POINTS` per segment uniform
in its bounding box grown by a margin (so a nucleus of a few pixels is sampled at all, its inside and its
rim); every query's logits are sampled once at them and the costs of all pairs are matrix products, so the
cost grows as Q x (count + BOX_POINTS x M) x M multiply-adds instead of Q x M x count bilinear samples (400
queries and 375 nuclei: 50x fewer samples). Points for the loss of the matched pairs (`sample_points`): each
segment its own `count` pixels, half in its grown box, half uniform over the image.
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
BOX_POINTS = 8  # matching points per segment inside its grown box, on top of the shared uniform ones


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


@dataclass
class SharedPoints:
    """One point set for every segment of an image: `xy` long [P, 2] (x, y), truth `values` float [M, P]
    (segment m's mask at each point) and `weights` float [P] (0 on void pixels)."""

    xy: torch.Tensor
    values: torch.Tensor
    weights: torch.Tensor

    def per_segment(self) -> Points:
        """The same points as a per-segment `Points` (what the written-out cost of a pair reads)."""
        m = self.values.shape[0]
        return Points(self.xy[None].expand(m, -1, -1), self.values, self.weights[None].expand(m, -1))


def _uniform_in(low: torch.Tensor, high: torch.Tensor, count: int, generator, size: tuple[int, int]) -> torch.Tensor:
    """long [M, count, 2] pixels uniform in the boxes [low, high) ([M, 2] each, x then y), clamped to the image."""
    u = torch.rand(low.shape[0], count, 2, generator=generator, device=low.device)
    xy = (low[:, None] + u * (high - low)[:, None]).floor().long()
    xy[..., 0].clamp_(0, size[1] - 1)
    xy[..., 1].clamp_(0, size[0] - 1)
    return xy


def grown_boxes(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) float [M, 2] (x, y): each mask's box grown by BOX_MARGIN of its side (>= 2 px), in the image."""
    height, width = masks.shape[-2:]
    boxes = segment_boxes(masks).float()
    margin = torch.clamp((boxes[:, 2:] - boxes[:, :2]) * BOX_MARGIN, min=2.0)
    low = torch.clamp(boxes[:, :2] - margin, min=0)
    high = torch.minimum(boxes[:, 2:] + margin, torch.tensor([width, height], device=masks.device, dtype=torch.float32))
    return low, high


def sample_points(segments: dict, count: int, generator: torch.Generator | None = None) -> Points:
    masks, valid = segments["masks"], segments["valid"]
    m, size = masks.shape[0], tuple(masks.shape[-2:])
    low, high = grown_boxes(masks)
    whole = torch.tensor([size[1], size[0]], device=masks.device, dtype=torch.float32).expand(m, 2)
    in_box = count // 2
    xy = torch.cat([_uniform_in(low, high, in_box, generator, size),
                    _uniform_in(torch.zeros_like(whole), whole, count - in_box, generator, size)], 1)
    x, y = xy[..., 0], xy[..., 1]
    values = masks[torch.arange(m, device=masks.device)[:, None], y, x].float()
    return Points(xy, values, valid[y, x].float())


def matching_points(segments: dict, count: int, generator: torch.Generator | None = None) -> SharedPoints:
    """`count` pixels uniform over the image plus BOX_POINTS in each segment's grown box, shared by all segments."""
    masks, valid = segments["masks"], segments["valid"]
    size = tuple(masks.shape[-2:])
    whole = torch.tensor([[size[1], size[0]]], device=masks.device, dtype=torch.float32)
    uniform = _uniform_in(torch.zeros_like(whole), whole, count, generator, size)[0]
    low, high = grown_boxes(masks)
    xy = torch.cat([uniform, _uniform_in(low, high, BOX_POINTS, generator, size).reshape(-1, 2)])
    x, y = xy[:, 0], xy[:, 1]
    return SharedPoints(xy, masks[:, y, x].float(), valid[y, x].float())


def grid(xy: torch.Tensor, padded: tuple[int, int]) -> torch.Tensor:
    """Pixel coordinates -> grid_sample's [-1, 1] (align_corners=False: pixel centres of the padded input)."""
    scale = torch.tensor([padded[1], padded[0]], device=xy.device, dtype=torch.float32)
    return (xy.float() + 0.5) / scale * 2 - 1


def logits_at(mask_logits: torch.Tensor, xy: torch.Tensor, padded: tuple[int, int]) -> torch.Tensor:
    """Mask logits [Q, h, w] at shared points [P, 2] -> [Q, P]."""
    return F.grid_sample(mask_logits[None].float(), grid(xy, padded)[None, None], mode="bilinear",
                         align_corners=False)[0, :, 0]


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
def cost_matrix(class_logits: torch.Tensor, mask_logits: torch.Tensor, labels: torch.Tensor, points: SharedPoints,
                padded: tuple[int, int], weights: dict) -> torch.Tensor:
    """float [Q, M]: the matching cost of every query (class logits [Q, K + 1], mask logits [Q, h, w]) and
    segment, on the shared points: the same BCE and Dice as `mask_costs`, as matrix products over the points."""
    probs = class_logits.float().softmax(-1)
    logits = logits_at(mask_logits, points.xy, padded)  # [Q, P]
    w, gw = points.weights, points.values * points.weights  # [P], [M, P]
    bce = ((F.softplus(logits) @ w)[:, None] - logits @ gw.T) / w.sum().clamp_min(1.0)
    p = torch.sigmoid(logits) * w
    dice = 1 - (2 * (p @ points.values.T) + 1) / (p.sum(-1, keepdim=True) + gw.sum(-1)[None] + 1)
    return -weights["class"] * probs[:, labels] + weights["mask"] * bce + weights["dice"] * dice


def hungarian(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(query indices, segment indices) of the minimum-cost assignment of a [Q, M] cost matrix."""
    if cost.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=cost.device)
        return empty, empty
    matrix = np.nan_to_num(cost.detach().float().cpu().numpy(), nan=1e6, posinf=1e6, neginf=-1e6)
    rows, cols = linear_sum_assignment(matrix)
    return (torch.as_tensor(rows, dtype=torch.long, device=cost.device),
            torch.as_tensor(cols, dtype=torch.long, device=cost.device))
