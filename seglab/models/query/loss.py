"""The set loss of the query model (DETR / MaskFormer): match, then classify every query and fit the matched masks.

For each prediction (before the first decoder layer and after each one: the auxiliary losses) and image:
queries are matched to the segments (seglab/models/query/matcher.py), then
    class: cross-entropy of every query against its segment's class, "no object" for the unmatched
           (that class down-weighted by `no_object_weight`, the weighted mean of torch's cross_entropy);
    mask:  BCE of each matched query's mask at its segment's points (weighted mean over the points);
    dice:  1 - Dice at those points;
mask and dice are summed over the matched pairs of the batch and divided by their number. One shared point
set per image and step serves the matching of every layer, one set of points per segment its loss (both
seglab/models/query/matcher.py). Computed in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seglab.models.query.matcher import cost_matrix, hungarian, mask_costs, matching_points, pair_logits, sample_points


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
    points = [sample_points(s, options["points"]) for s in segments]
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
            bce, dice = mask_costs(pair_logits(mask_logits[i, queries], pts.xy[matched], padded), pts.take(matched))
            bce_sum, dice_sum = bce_sum + bce.sum(), dice_sum + dice.sum()
        ce = F.cross_entropy(class_logits.float().transpose(1, 2), target_classes, class_weights)
        total["class"] = total["class"] + weights["class"] * ce
        total["mask"] = total["mask"] + weights["mask"] * bce_sum / num_masks
        total["dice"] = total["dice"] + weights["dice"] * dice_sum / num_masks
    return total
