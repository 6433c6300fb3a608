"""From (class logits [N, Q, K + 1], mask logits [N, Q, h, w]) to semantic, panoptic and instance results.

MaskFormer's inference rules (Cheng et al., 2021), with p_q the class probabilities (softmax over K + 1)
and m_q = sigmoid(mask logits) of query q:
- semantic: score(c, x) = sum_q p_q(c) m_q(x), normalised over the classes at each pixel (the argmax
  is unchanged) and returned as log-probabilities, computed at the mask stride and resized bilinearly
  (the sum is linear in m, so resizing first would give the same map up to the sigmoid's curvature);
- panoptic: queries whose best class is not "no object" with probability > `object_threshold` are kept;
  each pixel goes to the kept query maximising p_q * m_q(x); a query keeps its pixels only where m_q >= 0.5
  and only when they are at least `overlap_threshold` of its own m_q >= 0.5 area; stuff queries of one
  class merge into one segment; score = p_q x mean m_q over the segment (stuff: the best of the merged);
- instance: every query whose best class (besides "no object") is a thing, score = p_q(class) x the mean
  of m_q over its m_q >= 0.5 cells (at the mask stride, inside the unpadded input), the best
  `max_detections` with score >= `score_threshold`; boxes from the masks.
Masks are resized to the padded input (bilinear on logits) and cut to `size`, for the kept queries only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seglab.models.query.matcher import segment_boxes

EPS = 1e-6


def semantic_log_probs(class_logits: torch.Tensor, mask_logits: torch.Tensor, stride: int,
                       size: tuple[int, int]) -> torch.Tensor:
    """[N, K, H, W] log-probabilities at `size` (the unpadded input's; masks cover the padded one)."""
    probs = class_logits.float().softmax(-1)[..., :-1]
    scores = torch.einsum("nqk,nqhw->nkhw", probs, mask_logits.float().sigmoid())
    scores = scores / scores.sum(1, keepdim=True).clamp_min(EPS)
    scores = F.interpolate(scores, scale_factor=float(stride), mode="bilinear", align_corners=False)
    return scores[..., : size[0], : size[1]].clamp_min(EPS).log()


def full_masks(mask_logits: torch.Tensor, stride: int, size: tuple[int, int]) -> torch.Tensor:
    """Mask probabilities [M, H, W] at `size` from logits [M, h, w] at `stride` of the padded input."""
    if not len(mask_logits):
        return mask_logits.new_zeros(0, *size).float()
    up = F.interpolate(mask_logits[None].float(), scale_factor=float(stride), mode="bilinear", align_corners=False)
    return up[0, :, : size[0], : size[1]].sigmoid()


def panoptic(class_logits: torch.Tensor, mask_logits: torch.Tensor, stride: int, size: tuple[int, int],
             is_thing: list[bool], object_threshold: float, overlap_threshold: float) -> dict:
    """One image's raw outputs ([Q, K + 1], [Q, h, w]) -> {"segment_ids" int64 [H, W], "segments"}."""
    scores, labels = class_logits.float().softmax(-1).max(-1)
    num_classes = class_logits.shape[-1] - 1
    keep = torch.nonzero((labels != num_classes) & (scores > object_threshold)).squeeze(1)
    ids = torch.zeros(size, dtype=torch.long, device=class_logits.device)
    segments: list[dict] = []
    if not len(keep):
        return {"segment_ids": ids, "segments": segments}
    masks = full_masks(mask_logits[keep], stride, size)
    scores, labels = scores[keep], labels[keep]
    owner = (scores[:, None, None] * masks).argmax(0)
    stuff_segment: dict[int, dict] = {}
    for k in range(len(keep)):
        own = masks[k] >= 0.5
        area = int(own.sum())
        mask = (owner == k) & own
        kept = int(mask.sum())
        if not area or not kept or kept / area < overlap_threshold:
            continue
        label = int(labels[k])
        score = float(scores[k] * masks[k][mask].mean())
        if not is_thing[label] and label in stuff_segment:
            ids[mask] = stuff_segment[label]["id"]
            stuff_segment[label]["score"] = max(stuff_segment[label]["score"], score)
            continue
        segment = {"id": len(segments) + 1, "category_id": label, "score": score, "iscrowd": 0}
        segments.append(segment)
        ids[mask] = segment["id"]
        if not is_thing[label]:
            stuff_segment[label] = segment
    return {"segment_ids": ids, "segments": segments}


def instances(class_logits: torch.Tensor, mask_logits: torch.Tensor, stride: int, size: tuple[int, int],
              is_thing: list[bool], score_threshold: float, max_detections: int) -> dict:
    """One image's raw outputs -> torchvision-style {"boxes" [M, 4], "labels" [M] (1-based), "scores" [M],
    "masks" [M, 1, H, W] probabilities}, best score first."""
    probs = class_logits.float().softmax(-1)[:, :-1]
    class_prob, labels = probs.max(-1)
    thing = torch.tensor(is_thing, dtype=torch.bool, device=probs.device)[labels]
    cells = mask_logits[:, : -(-size[0] // stride), : -(-size[1] // stride)].float().sigmoid()
    inside = cells >= 0.5
    mask_score = (cells * inside).flatten(1).sum(1) / inside.flatten(1).sum(1).clamp_min(1)
    scores = class_prob * mask_score
    candidates = torch.nonzero(thing & inside.flatten(1).any(1) & (scores >= score_threshold)).squeeze(1)
    order = candidates[scores[candidates].argsort(descending=True)][:max_detections]
    masks = full_masks(mask_logits[order], stride, size)
    binary = masks >= 0.5  # a mask empty at full size keeps a zero box
    boxes = segment_boxes(binary).float() * binary.flatten(1).any(1, keepdim=True)  # pixel edges: x2 = last col + 1
    return {"boxes": boxes, "labels": labels[order] + 1, "scores": scores[order], "masks": masks[:, None]}
