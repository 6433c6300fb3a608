"""From per-location outputs to instances: location grid, box decoding, mask assembly, NMS.

Shared by training (locations, decoding, cropping) and inference (`detections`). Everything is
vectorised over locations; the only Python loop is over the images of a batch.

A location of a level with stride s sits at the centre of its cell, ((j + 0.5) s, (i + 0.5) s) in input
pixels; it predicts distances (l, t, r, b) from there to the box sides.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms


def locations(sizes: list[tuple], strides: list[int], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres [A, 2] (x, y) in input pixels and their strides [A] for levels of `sizes` (h, w), row-major, on
    `like`'s device and always float32: in bfloat16 (8 bits of mantissa) a centre at x = 258 would be stored
    as 256 or 260, and every box built on it off by up to 2 px (the masks are cropped to the boxes)."""
    points, point_strides = [], []
    for (h, w), s in zip(sizes, strides):
        ys = (torch.arange(h, device=like.device, dtype=torch.float32) + 0.5) * s
        xs = (torch.arange(w, device=like.device, dtype=torch.float32) + 0.5) * s
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], 1))
        point_strides.append(torch.full_like(grid_x.reshape(-1), float(s)))
    return torch.cat(points), torch.cat(point_strides)


def distances_to_boxes(points: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """(x, y) [..., 2] and (l, t, r, b) [..., 4] -> xyxy [..., 4], in float32 (the distances of a bfloat16 head
    are exact to ~0.4 %, a sum of centre and distance in bfloat16 only to 2-4 px at 256-1024)."""
    return torch.cat([points - distances[..., :2].float(), points + distances[..., 2:].float()], -1)


def box_crop(boxes: torch.Tensor, height: int, width: int, stride: int = 1) -> torch.Tensor:
    """[M, height, width] float: 1 on the cells (of `stride` input pixels) that overlap box m (xyxy, pixel edges).

    At stride 1 a pixel-edge box (x2 = last column + 1) keeps exactly its pixels; at a coarse stride every
    cell the box touches is kept, so a box smaller than a cell still keeps one."""
    left = torch.arange(width, device=boxes.device, dtype=boxes.dtype) * stride
    top = torch.arange(height, device=boxes.device, dtype=boxes.dtype) * stride
    in_x = (left + stride > boxes[:, 0:1]) & (left < boxes[:, 2:3])  # [M, width]
    in_y = (top + stride > boxes[:, 1:2]) & (top < boxes[:, 3:4])  # [M, height]
    return (in_y[:, :, None] & in_x[:, None, :]).to(boxes.dtype)


def mask_logits(coefficients: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """Coefficients [M, k] x prototypes [k, h, w] -> mask logits [M, h, w]."""
    k, h, w = protos.shape
    return (coefficients @ protos.reshape(k, h * w)).reshape(-1, h, w)


def assemble_masks(coefficients: torch.Tensor, protos: torch.Tensor, boxes: torch.Tensor, padded: tuple,
                   size: tuple) -> torch.Tensor:
    """Masks [M, 1, H, W] in [0, 1]: sigmoid(coef x protos) upsampled (bilinear) to the padded input, 0 outside
    the box's pixels (those `box_crop` keeps), cut to `size`.

    Logits are upsampled before the sigmoid (sharper edges than upsampling probabilities). Only each box's
    pixels are computed: its prototype cells plus a margin of one (what bilinear reads), upsampled alone,
    which gives the values of upsampling the whole map; the loop runs over detections, not locations."""
    height, width = size
    k, proto_h, proto_w = protos.shape
    stride = padded[0] // proto_h
    out = protos.new_zeros(len(boxes), 1, height, width)
    x0 = boxes[:, 0].floor().clamp(0, width).long()
    y0 = boxes[:, 1].floor().clamp(0, height).long()
    x1 = boxes[:, 2].ceil().clamp(0, width).long()
    y1 = boxes[:, 3].ceil().clamp(0, height).long()
    bounds = torch.stack([x0, y0, x1, y1], 1).tolist()
    for i, (px0, py0, px1, py1) in enumerate(bounds):
        if px1 <= px0 or py1 <= py0:
            continue
        cx0, cy0 = max(px0 // stride - 1, 0), max(py0 // stride - 1, 0)
        cx1, cy1 = min(-(-px1 // stride) + 1, proto_w), min(-(-py1 // stride) + 1, proto_h)
        cells = protos[:, cy0:cy1, cx0:cx1]
        logits = (coefficients[i] @ cells.reshape(k, -1)).reshape(1, 1, cy1 - cy0, cx1 - cx0)
        up = F.interpolate(logits, scale_factor=float(stride), mode="bilinear", align_corners=False)
        ox, oy = cx0 * stride, cy0 * stride
        out[i, 0, py0:py1, px0:px1] = torch.sigmoid(up[0, 0, py0 - oy:py1 - oy, px0 - ox:px1 - ox])
    return out


def detections(logits: torch.Tensor, boxes: torch.Tensor, coefficients: torch.Tensor, protos: torch.Tensor,
               proto_stride: int, size: tuple, score_threshold: float, pre_nms_top_k: int, nms_iou: float,
               max_detections: int) -> list[dict]:
    """Raw outputs of a batch (see OneStageSeg.forward_raw) -> one dict per image (the instance contract).

    Per location the best class only; score threshold, the top `pre_nms_top_k`, class-wise NMS
    (torchvision's batched_nms), the best `max_detections`, then masks for the survivors only.
    `size` (H, W) is the input size before padding; boxes are clipped to it."""
    height, width = size
    padded = (protos.shape[-2] * proto_stride, protos.shape[-1] * proto_stride)
    results = []
    for i in range(logits.shape[0]):
        scores, classes = torch.sigmoid(logits[i].float()).max(1)
        keep = torch.nonzero(scores >= score_threshold).squeeze(1)
        keep = keep[scores[keep].argsort(descending=True)[:pre_nms_top_k]]
        box = boxes[i, keep].float()
        box = torch.stack([box[:, 0].clamp(0, width), box[:, 1].clamp(0, height),
                           box[:, 2].clamp(0, width), box[:, 3].clamp(0, height)], 1)
        kept = batched_nms(box, scores[keep], classes[keep], nms_iou)[:max_detections]  # sorted by score
        keep, box = keep[kept], box[kept]
        masks = assemble_masks(coefficients[i, keep].float(), protos[i].float(), box, padded, size)
        results.append({"boxes": box, "labels": classes[keep] + 1, "scores": scores[keep], "masks": masks})
    return results
