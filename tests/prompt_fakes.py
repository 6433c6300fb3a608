"""A promptable backend without a network, for tests of seglab.prompt: it "segments" flat-colour regions.

`RegionBackend.embed` labels the image's 8-connected regions of one colour; `decode` answers a prompt
with the region under its first foreground click (or under the box centre) as three candidates:
  0: the region itself, logits +-8, score 0.95 (0.5 when the region touches the border: background);
  1: the region grown by 3 px with weak logits +-0.5 (unstable), score 0.93;
  2: the whole image, logits +8, score 0.2.
`mask_input` (low-res logits) shifts every logit by its mean, so feeding back is observable.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from seglab.prompt.backend import LOW_RES, ImageEmbedding


def disc_image(size=(64, 72), discs=((18, 20, 9, (250, 40, 40)), (44, 22, 8, (40, 250, 40)),
                                     (30, 50, 10, (40, 40, 250)))):
    """uint8 RGB [H, W, 3]: grey background with flat discs (cy, cx, radius, colour); also their masks."""
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    image = np.full((height, width, 3), 90, np.uint8)
    masks = []
    for cy, cx, r, colour in discs:
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        image[inside] = colour
        masks.append(inside)
    return image, masks


class RegionBackend:
    name = "fake_regions"
    device = torch.device("cpu")

    def __init__(self):
        self.embed_calls = 0

    def embed(self, image):
        self.embed_calls += 1
        flat = image.astype(np.int64) @ np.array([1, 256, 65536])
        regions = np.zeros(flat.shape, np.int64)
        for value in np.unique(flat):
            labels, _ = ndimage.label(flat == value, structure=np.ones((3, 3)))
            regions[labels > 0] = labels[labels > 0] + regions.max()
        return ImageEmbedding(torch.from_numpy(regions), image.shape[:2], image.shape[:2])

    def candidates(self, regions: torch.Tensor, x: float, y: float):
        height, width = regions.shape
        region = regions == regions[min(int(y), height - 1), min(int(x), width - 1)]
        border = bool(region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any())
        grown = F.max_pool2d(region[None, None].float(), 7, 1, 3)[0, 0] > 0
        logits = torch.stack([torch.where(region, 8.0, -8.0), torch.where(grown, 0.5, -0.5),
                              torch.full((height, width), 8.0)])
        return logits, torch.tensor([0.5 if border else 0.95, 0.93, 0.2])

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        batch = next(len(x) for x in (points, boxes, mask_input) if x is not None)
        out_logits, out_scores = [], []
        for b in range(batch):
            if points is not None and (labels[b] == 1).any():
                x, y = points[b][labels[b] == 1][0].tolist()
            elif boxes is not None:
                x, y = ((boxes[b, 0] + boxes[b, 2]) / 2).item(), ((boxes[b, 1] + boxes[b, 3]) / 2).item()
            else:
                x, y = 0.0, 0.0
            logits, scores = self.candidates(embedding.features, x, y)
            if mask_input is not None:
                logits = logits + mask_input[b].mean()
            out_logits.append(logits if multimask else logits[:1])
            out_scores.append(scores if multimask else scores[:1])
        logits, scores = torch.stack(out_logits), torch.stack(out_scores)
        low_res = F.interpolate(logits, (LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
        return logits, scores, low_res
