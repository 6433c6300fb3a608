"""A promptable backend for the serve tests that follows seglab/prompt/backend.py's protocol with real,
deterministic behaviour and no trained weights: colour-threshold flood fill from the clicked points.

- embed: the image smoothed (Gaussian, sigma 2) as float32;
- a positive point adds the connected region of pixels whose colour is within `tolerance` (RGB
  distance) of the colour around the point; a negative point removes its own region;
- a box alone fills from its centre inside the box; with points, the mask is cut to the box;
- multimask: three candidates at 0.75 / 1 / 1.25 x tolerance, scored 0.7 / 0.9 / 0.8 (the nominal
  one wins); mask_input is ignored (the fill has no memory).
Masks are logits +8 inside, -8 outside, at the image's size; low_res the same resized to 256 x 256.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from seglab.prompt.backend import LOW_RES, ImageEmbedding, check_image

SCALES = (0.75, 1.0, 1.25)
SCORES = (0.7, 0.9, 0.8)


class FloodFillBackend:
    name = "flood_fill_test"
    device = torch.device("cpu")

    def __init__(self, tolerance: float = 45.0):
        self.tolerance = tolerance
        self.embedded = 0  # how many times embed ran (the server must embed once per image)

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        image = check_image(image)
        self.embedded += 1
        smooth = ndi.gaussian_filter(image.astype(np.float32), (2, 2, 0))
        return ImageEmbedding(smooth, image.shape[:2], image.shape[:2])

    def region(self, smooth: np.ndarray, x: float, y: float, tolerance: float) -> np.ndarray:
        height, width = smooth.shape[:2]
        col, row = min(int(x), width - 1), min(int(y), height - 1)
        ref = smooth[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3].reshape(-1, 3).mean(0)
        components, _ = ndi.label(np.linalg.norm(smooth - ref, axis=2) < tolerance)
        return components == components[row, col]

    def one_mask(self, smooth, points, labels, box, tolerance) -> np.ndarray:
        mask = np.zeros(smooth.shape[:2], bool)
        inside = np.ones_like(mask)
        if box is not None:
            x0, y0, x1, y1 = (round(float(v)) for v in box)
            inside[:] = False
            inside[max(y0, 0):y1, max(x0, 0):x1] = True
        kept = [(p, int(l)) for p, l in zip(points, labels) if l >= 0] if points is not None else []
        if not any(l == 1 for _, l in kept) and box is not None:
            mask |= self.region(smooth, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, tolerance)
        for (x, y), label in kept:
            region = self.region(smooth, float(x), float(y), tolerance)
            mask = mask | region if label == 1 else mask & ~region
        return mask & inside

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        smooth = embedding.features
        batch = next(t.shape[0] for t in (points, boxes, mask_input) if t is not None)
        scales = SCALES if multimask else (1.0,)
        masks = np.zeros((batch, len(scales), *smooth.shape[:2]), bool)
        for b in range(batch):
            pts = None if points is None else points[b].cpu().numpy()
            lbl = None if labels is None else labels[b].cpu().numpy()
            box = None if boxes is None else boxes[b].cpu().numpy()
            for c, scale in enumerate(scales):
                masks[b, c] = self.one_mask(smooth, pts, lbl, box, self.tolerance * scale)
        logits = torch.from_numpy(np.where(masks, 8.0, -8.0).astype(np.float32))
        scores = torch.tensor([SCORES if multimask else (SCORES[1],)] * batch, dtype=torch.float32)
        low_res = F.interpolate(logits, (LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
        return logits, scores, low_res
