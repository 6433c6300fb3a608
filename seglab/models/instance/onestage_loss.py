"""Training targets and losses of the one-stage model: task-aligned assignment, QFL, GIoU, prototype-mask BCE.

Assignment (`assign`, task-aligned in the TOOD / YOLOv8 way): for each object, locations are candidates
when they lie inside its box or within `centre_radius` strides of its centre (the centre prior keeps
objects smaller than a cell from having no candidate); each candidate gets the alignment
`score^alpha * IoU^beta` (score: the predicted probability of the object's class, IoU: predicted vs
true box); the `top_k` best candidates are positives. A location positive for several objects keeps
the one its predicted box overlaps most. The soft class target of a positive is its alignment,
rescaled so that each object's best location gets that location's IoU (a quality target).

Losses (all float32):
- `loss_cls`: quality focal loss (BCE against the soft target, weighted by |target - p|^gamma) over all
  locations and classes, divided by the number of positives;
- `loss_box`: GIoU loss of the positives' boxes, weighted by their soft target;
- `loss_mask`: BCE of coef x prototypes against the object's mask inside its (true) box, the mean over
  positives (at most `mask_samples` per image, drawn at random), where `mask_loss` (MASK_LOSSES) says:
  - points (the default): a grid of `MASK_GRID` x `MASK_GRID` points spread over the box in input pixels;
    the logit at a point is read from the prototypes bilinearly (torchvision's roi_align, aligned), which
    is what inference's upsampling of coef x prototypes gives there, and the truth is the mask's pixel
    under the point. So the loss sees the mask inference thresholds, at input resolution;
  - dense: every prototype cell of the box against the fraction of the cell the object covers (soft
    targets at the edges), divided by the box's area in cells. At stride 4 a nucleus 12 px wide is 3
    cells, and the fractions blur its edge and the gap to a touching neighbour.
  Soft targets' own entropy is subtracted (the KL divergence: the same gradient, 0 at a perfect fit).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, generalized_box_iou_loss, roi_align

from seglab.models.instance.onestage_post import box_crop, mask_logits


class Dense(NamedTuple):
    """Per-location outputs of a batch: A locations over all levels, k prototypes at stride `proto_stride`."""

    logits: torch.Tensor  # [N, A, C]
    boxes: torch.Tensor  # [N, A, 4] xyxy, padded-input pixels
    coefficients: torch.Tensor  # [N, A, k]
    protos: torch.Tensor  # [N, k, h, w]
    points: torch.Tensor  # [A, 2] (x, y) location centres
    strides: torch.Tensor  # [A]


class Assignment(NamedTuple):
    gt_index: torch.Tensor  # [A] int64: the object a location predicts, -1 for background
    quality: torch.Tensor  # [A] soft class target of the positives (0 for background)


@torch.no_grad()
def assign(points: torch.Tensor, strides: torch.Tensor, scores: torch.Tensor, pred_boxes: torch.Tensor,
           gt_boxes: torch.Tensor, gt_classes: torch.Tensor, top_k: int = 10, alpha: float = 1.0,
           beta: float = 6.0, centre_radius: float = 1.0) -> Assignment:
    """Task-aligned assignment for one image. scores [A, C] probabilities; gt_classes [G] 0-based."""
    num_locations = points.shape[0]
    gt_index = torch.full((num_locations,), -1, dtype=torch.long, device=points.device)
    quality = points.new_zeros(num_locations)
    if len(gt_boxes) == 0:
        return Assignment(gt_index, quality)
    x, y = points[None, :, 0], points[None, :, 1]
    x1, y1, x2, y2 = (gt_boxes[:, i:i + 1] for i in range(4))
    inside = (x > x1) & (x < x2) & (y > y1) & (y < y2)
    reach = centre_radius * strides[None]
    near_centre = ((x - (x1 + x2) / 2).abs() < reach) & ((y - (y1 + y2) / 2).abs() < reach)
    candidate = inside | near_centre  # [G, A]
    iou = box_iou(gt_boxes, pred_boxes).clamp(min=0)  # [G, A]
    metric = scores[:, gt_classes].T.pow(alpha) * iou.pow(beta) * candidate
    chosen = metric.masked_fill(~candidate, -1.0).topk(min(top_k, num_locations), dim=1).indices
    positive = torch.zeros_like(candidate).scatter_(1, chosen, True) & candidate
    owner = iou.masked_fill(~positive, -1.0).argmax(0)  # several objects: the best-overlapping one
    is_positive = positive.any(0)
    final = torch.zeros_like(positive).scatter_(0, owner[None], True) & is_positive[None]
    aligned, overlap = metric * final, iou * final
    scale = overlap.amax(1, keepdim=True) / aligned.amax(1, keepdim=True).clamp(min=1e-12)
    quality = (aligned * scale).sum(0)
    gt_index = torch.where(is_positive, owner, gt_index)
    return Assignment(gt_index, quality)


def quality_focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Sum of BCE(logits, soft target) weighted by |target - sigmoid(logits)|^gamma (Li et al., GFL)."""
    weight = (target - torch.sigmoid(logits)).abs().pow(gamma)
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight.detach()).sum()


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """-p log p - (1 - p) log(1 - p), 0 at p in {0, 1}: the least BCE a soft target allows."""
    q = p.clamp(1e-6, 1 - 1e-6)
    return -(p * q.log() + (1 - p) * (1 - q).log())


def dense_cells_loss(coefficients: torch.Tensor, protos: torch.Tensor, gt_masks: torch.Tensor, gt_boxes: torch.Tensor,
                     proto_stride: int) -> torch.Tensor:
    """Sum over P positives of the box-normalised BCE. gt_masks [P, h, w] soft targets at proto resolution."""
    h, w = protos.shape[-2:]
    crop = box_crop(gt_boxes, h, w, proto_stride)
    bce = F.binary_cross_entropy_with_logits(mask_logits(coefficients, protos), gt_masks, reduction="none")
    bce = bce - binary_entropy(gt_masks)  # KL divergence: the same gradient, 0 at a perfect fit of soft targets
    area = crop.sum((1, 2)).clamp(min=1.0)  # the box's area in prototype cells
    return ((bce * crop).sum((1, 2)) / area).sum()


def downsample_masks(masks: torch.Tensor, padded: tuple, stride: int, chunk: int = 32) -> torch.Tensor:
    """uint8 [G, H, W] at input size -> float [G, h, w]: the fraction of each prototype cell the object covers."""
    out = []
    for part in masks.split(chunk):
        part = part.float()[None]
        part = F.pad(part, (0, padded[1] - part.shape[-1], 0, padded[0] - part.shape[-2]))
        out.append(F.avg_pool2d(part, stride)[0] if stride > 1 else part[0])
    return torch.cat(out) if out else masks.new_zeros(0, padded[0] // stride, padded[1] // stride).float()


def dense_mask_loss(coefficients: torch.Tensor, protos: torch.Tensor, masks: torch.Tensor, boxes: torch.Tensor,
                    owner: torch.Tensor, proto_stride: int) -> torch.Tensor:
    """mask_loss=dense: coefficients [P, k] of positives owned by objects `owner` [P] of masks uint8 [G, H, W]
    (input pixels) with boxes [G, 4] -> the sum over positives."""
    padded = (protos.shape[-2] * proto_stride, protos.shape[-1] * proto_stride)
    objects, which = owner.unique(return_inverse=True)
    small = downsample_masks(masks[objects], padded, proto_stride)[which]
    return dense_cells_loss(coefficients, protos, small, boxes[owner], proto_stride)


MASK_GRID = 32  # mask_loss=points: points per box side


def box_grid(boxes: torch.Tensor, points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [G, points], y [G, points]): bin centres of a points x points grid over each xyxy box, in input pixels."""
    steps = (torch.arange(points, device=boxes.device, dtype=boxes.dtype) + 0.5) / points
    xs = boxes[:, 0:1] + steps * (boxes[:, 2:3] - boxes[:, 0:1])
    ys = boxes[:, 1:2] + steps * (boxes[:, 3:4] - boxes[:, 1:2])
    return xs, ys


def point_mask_loss(coefficients: torch.Tensor, protos: torch.Tensor, masks: torch.Tensor, boxes: torch.Tensor,
                    owner: torch.Tensor, proto_stride: int, points: int = MASK_GRID) -> torch.Tensor:
    """mask_loss=points, the arguments of `dense_mask_loss`: the mean BCE over the grid of each positive's box."""
    objects, which = owner.unique(return_inverse=True)
    object_boxes = boxes[objects]
    # prototypes at the grid points (roi_align samples one bilinear value per bin centre: sampling_ratio=1,
    # aligned=True puts pixel centres where interpolate(align_corners=False) has them)
    at_points = roi_align(protos[None], [object_boxes], output_size=points, spatial_scale=1.0 / proto_stride,
                          sampling_ratio=1, aligned=True)  # [G', k, points, points]
    logits = torch.einsum("pk,pkyx->pyx", coefficients, at_points[which])
    xs, ys = box_grid(object_boxes, points)
    height, width = masks.shape[-2:]
    cols = xs.floor().long().clamp(0, width - 1)
    rows = ys.floor().long().clamp(0, height - 1)
    truth = masks[objects[:, None, None], rows[:, :, None], cols[:, None, :]].to(logits.dtype)  # [G', points, points]
    bce = F.binary_cross_entropy_with_logits(logits, truth[which], reduction="none")
    return bce.mean((1, 2)).sum()


MASK_LOSSES = {"points": point_mask_loss, "dense": dense_mask_loss}  # mask_loss= -> sum over positives


def one_stage_losses(dense: Dense, targets: list[dict], proto_stride: int, options: dict) -> dict[str, torch.Tensor]:
    """Named losses of a batch; `options`: top_k, alpha, beta, centre_radius, gamma, mask_samples, mask_loss, weights."""
    logits, boxes = dense.logits.float(), dense.boxes.float()
    coefficients, protos = dense.coefficients.float(), dense.protos.float()
    cls_sum = box_sum = mask_sum = logits.new_zeros(())
    positives = quality_sum = logits.new_zeros(())
    mask_count = 0
    for i, target in enumerate(targets):
        gt_boxes = target["boxes"].to(logits.device, torch.float32).reshape(-1, 4)
        gt_classes = target["labels"].to(logits.device).long().reshape(-1) - 1
        if len(gt_classes) and (gt_classes.min() < 0 or gt_classes.max() >= logits.shape[-1]):
            raise ValueError(f"target {i}: labels must be 1..{logits.shape[-1]} (0 is background), got "
                             f"{sorted(set((gt_classes + 1).tolist()))}")
        a = assign(dense.points, dense.strides, torch.sigmoid(logits[i]).detach(), boxes[i].detach(), gt_boxes,
                   gt_classes, options["top_k"], options["alpha"], options["beta"], options["centre_radius"])
        pos = torch.nonzero(a.gt_index >= 0).squeeze(1)
        owner = a.gt_index[pos]
        soft = torch.zeros_like(logits[i])
        soft[pos, gt_classes[owner]] = a.quality[pos]
        cls_sum = cls_sum + quality_focal_loss(logits[i], soft, options["gamma"])
        positives = positives + len(pos)
        weight = a.quality[pos]
        box_sum = box_sum + (generalized_box_iou_loss(boxes[i, pos], gt_boxes[owner], reduction="none") * weight).sum()
        quality_sum = quality_sum + weight.sum()
        if len(pos):
            sample = torch.randperm(len(pos), device=pos.device)[:options["mask_samples"]]
            pos, owner = pos[sample], owner[sample]
            mask_sum = mask_sum + MASK_LOSSES[options["mask_loss"]](
                coefficients[i, pos], protos[i], target["masks"].to(logits.device), gt_boxes, owner, proto_stride)
            mask_count += len(pos)
    connect = 0.0 * (boxes.sum() + coefficients.sum() + protos.sum())  # every output in the graph (DDP)
    weights = options["weights"]
    return {"loss_cls": weights["cls"] * cls_sum / positives.clamp(min=1.0),
            "loss_box": weights["box"] * box_sum / quality_sum.clamp(min=1e-6) + connect,
            "loss_mask": weights["mask"] * mask_sum / max(mask_count, 1)}
