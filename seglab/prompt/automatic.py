"""Segment everything: a grid of single-point prompts, filtered and de-duplicated (SAM's automatic generator).

    generator = AutomaticMaskGenerator(Predictor(...))       # or a backend, or a checkpoint path
    records = generator.generate(rgb_uint8)                  # list of dicts, largest area first

Steps, as in segment-anything's SamAutomaticMaskGenerator (whole image, no crop layers):
1. a `points_per_side` x `points_per_side` grid of foreground clicks (cell centres), `points_per_batch`
   clicks per decode, 3 candidate masks each;
2. candidates kept when the predicted IoU >= `pred_iou_thresh` and the stability score (the IoU of the
   mask thresholded at +offset and at -offset) >= `stability_score_thresh`;
3. duplicates removed by box NMS (torchvision.ops.batched_nms, IoU `box_nms_thresh`, predicted IoU as
   the score);
4. optionally (`min_mask_region_area` > 0) islands and holes smaller than that many pixels removed
   (scipy.ndimage.label), then NMS again preferring the masks that did not change.
Each record: segmentation (COCO RLE from pycocotools.mask.encode, counts as str; or a bool array with
output_mode="binary_mask"), area, bbox (XYWH, pycocotools.mask.toBbox: COCO's convention, one pixel
wider than segment-anything's), predicted_iou, point_coords [[x, y]], stability_score, crop_box (XYWH).
"""
from __future__ import annotations

import numpy as np
import torch
from pycocotools import mask as mask_utils
from scipy import ndimage
from torchvision.ops import batched_nms, masks_to_boxes

from seglab.prompt.backend import MASK_THRESHOLD, PromptBackend
from seglab.prompt.predictor import Predictor

OUTPUT_MODES = ("coco_rle", "binary_mask")


def point_grid(points_per_side: int, height: int, width: int) -> np.ndarray:
    """Cell centres of an n x n grid over the image, (x, y) pixels, float32 [n * n, 2], row by row."""
    centres = (np.arange(points_per_side) + 0.5) / points_per_side
    xs, ys = np.meshgrid(centres * width, centres * height)
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def stability_score(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """IoU between the masks at threshold + offset and at threshold - offset, per mask ([N, H, W] -> [N])."""
    inner = (logits > threshold + offset).flatten(1).sum(1, dtype=torch.int64)
    outer = (logits > threshold - offset).flatten(1).sum(1, dtype=torch.int64)
    return inner.float() / outer.clamp(min=1).float()


def remove_small_regions(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, bool]:
    """Fill holes, then drop islands, smaller than `min_area` pixels; returns (mask, changed)."""
    changed = False
    for fill in (True, False):  # holes are islands of the background
        region = ~mask if fill else mask
        labels, count = ndimage.label(region, structure=np.ones((3, 3)))  # 8-connected
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        small = np.flatnonzero(sizes < min_area) + 1
        if fill:
            if len(small):
                mask, changed = mask | np.isin(labels, small), True
        elif len(small):
            keep = np.flatnonzero(sizes >= min_area) + 1
            if len(keep) == 0:  # SAM keeps the largest island rather than emptying the mask
                keep = [int(np.argmax(sizes)) + 1]
            mask, changed = np.isin(labels, keep), True
    return mask, changed


class AutomaticMaskGenerator:
    """Every object of an image from a point grid (see the module docstring for the steps and records)."""

    def __init__(self, model: Predictor | PromptBackend | str, points_per_side: int = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, box_nms_thresh: float = 0.7, min_mask_region_area: int = 0,
                 output_mode: str = "coco_rle", **predictor_options):
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode={output_mode!r}: expected one of {', '.join(OUTPUT_MODES)}")
        if points_per_side < 1 or points_per_batch < 1:
            raise ValueError(f"points_per_side ({points_per_side}) and points_per_batch ({points_per_batch}) "
                             f"must be >= 1")
        self.predictor = model if isinstance(model, Predictor) else Predictor(model, **predictor_options)
        self.points_per_side, self.points_per_batch = points_per_side, points_per_batch
        self.pred_iou_thresh, self.stability_score_thresh = pred_iou_thresh, stability_score_thresh
        self.stability_score_offset, self.box_nms_thresh = stability_score_offset, box_nms_thresh
        self.min_mask_region_area, self.output_mode = min_mask_region_area, output_mode

    @torch.inference_mode()
    def generate(self, image: np.ndarray) -> list[dict]:
        self.predictor.set_image(image)
        height, width = image.shape[:2]
        grid = point_grid(self.points_per_side, height, width)
        masks, scores, stability, points = [], [], [], []
        for start in range(0, len(grid), self.points_per_batch):
            batch = grid[start:start + self.points_per_batch]
            kept = self._candidates(batch)
            for found, part in zip((masks, scores, stability, points), kept):
                found.append(part)
        self.predictor.reset_image()
        masks, scores, stability, points = (torch.cat(x) for x in (masks, scores, stability, points))
        masks, scores, stability, points = self._deduplicate(masks, scores, stability, points, scores)
        if self.min_mask_region_area > 0 and len(masks):
            masks, scores, stability, points = self._clean(masks, scores, stability, points)
        return self._records(masks, scores, stability, points, (height, width))

    def _candidates(self, batch: np.ndarray):
        """One decode of a batch of clicks -> the candidates that pass the IoU and stability filters."""
        pts = torch.from_numpy(batch)[:, None]
        labels = torch.ones(pts.shape[:2], dtype=torch.int64)
        logits, iou, _ = self.predictor.predict_torch(pts, labels, multimask_output=True, return_logits=True)
        logits, iou = logits.flatten(0, 1).float().cpu(), iou.flatten().float().cpu()
        repeated = pts[:, 0].repeat_interleave(logits.shape[0] // len(pts), dim=0)
        keep = iou >= self.pred_iou_thresh
        logits, iou, repeated = logits[keep], iou[keep], repeated[keep]
        stable = stability_score(logits, MASK_THRESHOLD, self.stability_score_offset)
        keep = stable >= self.stability_score_thresh
        return logits[keep] > MASK_THRESHOLD, iou[keep], stable[keep], repeated[keep]

    def _deduplicate(self, masks, scores, stability, points, nms_scores):
        nonempty = masks.flatten(1).any(1)
        masks, scores, stability, points, nms_scores = (x[nonempty] for x in (masks, scores, stability, points,
                                                                               nms_scores))
        if len(masks) == 0:
            return masks, scores, stability, points
        boxes = masks_to_boxes(masks).float()
        keep = batched_nms(boxes, nms_scores.float(), torch.zeros(len(boxes), dtype=torch.int64), self.box_nms_thresh)
        return masks[keep], scores[keep], stability[keep], points[keep]

    def _clean(self, masks, scores, stability, points):
        cleaned, unchanged = [], []
        for mask in masks.numpy():
            mask, changed = remove_small_regions(mask, self.min_mask_region_area)
            cleaned.append(torch.from_numpy(mask))
            unchanged.append(float(not changed))
        return self._deduplicate(torch.stack(cleaned), scores, stability, points, torch.tensor(unchanged))

    def _records(self, masks, scores, stability, points, size) -> list[dict]:
        height, width = size
        records = []
        for mask, score, stable, point in zip(masks.numpy(), scores.tolist(), stability.tolist(), points.tolist()):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            records.append({
                "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")}
                if self.output_mode == "coco_rle" else mask,
                "area": int(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "predicted_iou": float(score),
                "point_coords": [point],
                "stability_score": float(stable),
                "crop_box": [0, 0, width, height],
            })
        return sorted(records, key=lambda r: -r["area"])
