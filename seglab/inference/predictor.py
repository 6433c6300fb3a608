"""Predictor: a checkpoint applied to images, with the checkpoint's own preprocessing.

The image is stretched to the training size, the logits are resized (bilinear) back to the
image's own size, then argmax: what `predict` writes and what `val` scores by default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seglab.data.dataset import load_image
from seglab.data.io import image_size
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.engine.device import Runtime, normalize


def labels_at_size(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """logits [C, h, w] -> class ids [H, W] at `size` (H, W)."""
    logits = logits.float()
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits[None], size=tuple(size), mode="bilinear", align_corners=False)[0]
    return logits.argmax(0)


class Predictor:
    def __init__(self, checkpoint: str | Path, runtime: Runtime | None = None):
        self.checkpoint = load_checkpoint(checkpoint)
        self.runtime = runtime or Runtime.from_config("auto", "auto", True)
        self.model = self.runtime.prepare_model(model_from_checkpoint(self.checkpoint))
        self.classes = ClassTable.from_dict(self.checkpoint["classes"])
        self.preprocess = self.checkpoint["preprocess"]
        self.size = int(self.preprocess["size"][0])

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, S, S] already at the training size -> float logits [N, C, S, S]."""
        x = normalize(images, self.preprocess["mean"], self.preprocess["std"], self.runtime)
        with self.runtime.autocast():
            return self.model(x).float()

    def predict_files(self, paths: list[Path]) -> list[np.ndarray]:
        """Class ids (uint8 [H, W] at each image's own size) for a batch of image files."""
        images = [load_image(p, self.size) for p in paths]
        sizes = [image_size(p)[::-1] for p in paths]
        logits = self.logits(torch.from_numpy(np.stack(images)))
        return [labels_at_size(l, s).to(torch.uint8).cpu().numpy() for l, s in zip(logits, sizes)]

