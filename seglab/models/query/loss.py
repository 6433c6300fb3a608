"""The set loss of the query model (DETR / MaskFormer): match, then classify every query and fit the matched masks.

For each prediction (before the first decoder layer and after each one: the auxiliary losses) and image:
queries are matched to the segments (seglab/models/query/matcher.py), then
    class: cross-entropy of every query against its segment's class, "no object" for the unmatched
           (that class down-weighted by `no_object_weight`, the weighted mean of torch's cross_entropy);
    mask:  BCE of each matched query's mask against its segment (weighted mean over the pixels it is read at);
    dice:  1 - Dice over those pixels;
mask and dice are summed over the matched pairs of the batch and divided by their number. Where the mask
terms are read (`options["mask_loss"]`, the registry MASK_TARGETS):
    points: each segment's own sampled points (half in its grown box, half uniform; matcher.py), the
            predicted logits sampled bilinearly there: cheap, and enough for large segments;
    dense:  every pixel of the mask logits (the pixel decoder's stride), against the segment's area
            fraction in each cell (void pixels leave the cell's weight): a mask spreading over neighbouring
            objects is penalised by each pixel it covers, not by the few uniform points that land there.
One shared point set per image and step serves the matching of every layer (matcher.py) either way.
Computed in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seglab.models.query.matcher import (Points, cost_matrix, hungarian, mask_costs, matching_points, pair_logits,
                                         sample_points)

POOL_CHUNK = 32  # segments pooled at a time by dense_targets (a float copy of 32 masks at 1024^2: 134 MB)


def pooled(masks: torch.Tensor, padded: tuple[int, int], stride: int) -> torch.Tensor:
    """bool [M, H, W] -> float [M, padded_h / stride, padded_w / stride]: the fraction of each cell that is set
    (zero padding on the right and bottom up to `padded`)."""
    pad = (0, padded[1] - masks.shape[-1], 0, padded[0] - masks.shape[-2])
    return torch.cat([F.avg_pool2d(F.pad(chunk.float(), pad)[None], stride)[0]
                      for chunk in masks.split(POOL_CHUNK)])


def dense_targets(segments: dict, count: int, padded: tuple[int, int], stride: int) -> Points:
    """Every cell of the mask grid: `values` [M, h * w] the segment's share of the cell's valid pixels,
    `weights` [M, h * w] the cell's valid share (xy [M, 0, 2]: the logits are read as they are)."""
    masks, valid = segments["masks"], segments["valid"]
    if not len(masks):
        empty = torch.zeros(0, (padded[0] // stride) * (padded[1] // stride), device=masks.device)
        return Points(torch.zeros(0, 0, 2, dtype=torch.long, device=masks.device), empty, empty.clone())
    weights = pooled(valid[None], padded, stride).flatten(1)
    values = (pooled(masks & valid, padded, stride).flatten(1) / weights.clamp_min(1e-6)).clamp_(max=1.0)
    return Points(torch.zeros(len(masks), 0, 2, dtype=torch.long, device=masks.device), values,
                  weights.expand_as(values))


def sampled_targets(segments: dict, count: int, padded: tuple[int, int], stride: int) -> Points:
    return sample_points(segments, count)


def dense_logits(mask_logits: torch.Tensor, points: Points, padded: tuple[int, int]) -> torch.Tensor:
    """Mask logits [M, h, w] of the matched queries -> [M, h * w]."""
    return mask_logits.float().flatten(1)


def sampled_logits(mask_logits: torch.Tensor, points: Points, padded: tuple[int, int]) -> torch.Tensor:
    return pair_logits(mask_logits, points.xy, padded)


# mask_loss -> (the matched segments' targets, the matched queries' logits read at them)
MASK_TARGETS = {"points": (sampled_targets, sampled_logits), "dense": (dense_targets, dense_logits)}


def set_losses(predictions: list[tuple[torch.Tensor, torch.Tensor]], segments: list[dict], padded: tuple[int, int],
               options: dict) -> dict[str, torch.Tensor]:
    """predictions: [(class logits [N, Q, K + 1], mask logits [N, Q, h, w])] for the padded input of size
    `padded`; segments: one dict per image (seglab/models/query/targets.py) at the unpadded size.
    Returns {"class", "mask", "dice"}, each weighted and summed over the predictions."""
    weights = options["weights"]
    num_classes = predictions[0][0].shape[-1] - 1
    device = predictions[0][0].device
    class_weights = torch.ones(num_classes + 1, device=device)
    class_weights[-1] = options["no_object_weight"]
    targets_of, logits_at_targets = MASK_TARGETS[options["mask_loss"]]
    stride = padded[0] // predictions[0][1].shape[-2]
    points = [targets_of(s, options["points"], padded, stride) for s in segments]
    shared = [matching_points(s, options["points"]) for s in segments]
    num_masks = max(1, sum(len(s["labels"]) for s in segments))
    total = {name: torch.zeros((), device=device) for name in ("class", "mask", "dice")}
    for class_logits, mask_logits in predictions:
        target_classes = torch.full(class_logits.shape[:2], num_classes, dtype=torch.long, device=device)
        bce_sum = dice_sum = torch.zeros((), device=device)
        for i, (segment, pts, match_pts) in enumerate(zip(segments, points, shared)):
            labels = segment["labels"]
            if not len(labels):
                continue
            queries, matched = hungarian(cost_matrix(class_logits[i], mask_logits[i], labels, match_pts, padded, weights))
            target_classes[i, queries] = labels[matched]
            truth = pts.take(matched)
            bce, dice = mask_costs(logits_at_targets(mask_logits[i, queries], truth, padded), truth)
            bce_sum, dice_sum = bce_sum + bce.sum(), dice_sum + dice.sum()
        ce = F.cross_entropy(class_logits.float().transpose(1, 2), target_classes, class_weights)
        total["class"] = total["class"] + weights["class"] * ce
        total["mask"] = total["mask"] + weights["mask"] * bce_sum / num_masks
        total["dice"] = total["dice"] + weights["dice"] * dice_sum / num_masks
    return total
