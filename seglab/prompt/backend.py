"""The promptable-backend protocol: what every promptable model (official SAM / SAM 2 / MobileSAM,
seglab's own click model) implements so that `seglab.prompt.Predictor` can drive it.

A backend splits the work the SAM way: `embed` is the heavy part, run once per image; `decode` is
the light part, run once per prompt (click, box, mask), many prompts per call.

Coordinates are always in the ORIGINAL image's pixels (x, y), as in `SamPredictor.predict`; the
backend resizes / pads to its own input size inside and returns masks at the original size.
Tensors crossing the protocol are torch tensors on `backend.device` (inputs may be given on CPU;
`Predictor` moves them). Masks are LOGITS: the mask is `logits > MASK_THRESHOLD` (0.0, SAM's).

Shapes (B prompts per call, N points per prompt, C candidate masks per prompt):

    embed(image: np.ndarray uint8 [H, W, 3] RGB) -> embedding (any object; see ImageEmbedding)

    decode(embedding,
           points:     float32 [B, N, 2] (x, y) pixels | None,
           labels:     int64   [B, N] 1 foreground, 0 background, -1 padding | None,
           boxes:      float32 [B, 4] (x0, y0, x1, y1) pixels | None,
           mask_input: float32 [B, 1, 256, 256] low-resolution logits (from a previous decode) | None,
           multimask:  bool)
      -> (masks_logits   float32 [B, C, H, W]  at the original image size,
          scores         float32 [B, C]        predicted IoU (or the model's own quality score),
          low_res_logits float32 [B, C, 256, 256]  to feed back as mask_input)
      with C = 3 when multimask else 1.

At least one of points / boxes / mask_input is given; `points` and `labels` come together. When
both points and boxes are given they have the same B (one box per point set). Padding points
(label -1) carry no information and are ignored by the backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

MASK_THRESHOLD = 0.0  # a pixel is in the mask when its logit is above this (SAM's mask_threshold)
LOW_RES = 256  # side of the low-resolution logits (decode output and mask_input)
MULTIMASK_OUTPUTS = 3  # C when multimask=True


@dataclass
class ImageEmbedding:
    """What `embed` returns for the backends in seglab (any object is allowed by the protocol).

    `features`: the model's image features (a tensor or a dict of tensors, already on the device);
    `original_size`: (H, W) of the image given to `embed`; `input_size`: (h, w) of the resized image
    inside the model's square input (before padding); `extra`: anything else the decoder needs.
    """

    features: Any
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    extra: dict = field(default_factory=dict)


@runtime_checkable
class PromptBackend(Protocol):
    """A promptable segmentation model (see the module docstring for shapes and units)."""

    name: str  # e.g. "sam_vit_b", "sam2.1_hiera_t", "click_lite0"
    device: torch.device

    def embed(self, image: np.ndarray) -> Any:
        """Heavy part, once per image: uint8 RGB [H, W, 3] -> an embedding object for `decode`."""
        ...

    def decode(self, embedding: Any, points: torch.Tensor | None, labels: torch.Tensor | None,
               boxes: torch.Tensor | None, mask_input: torch.Tensor | None,
               multimask: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Light part, per prompt batch -> (masks_logits [B,C,H,W], scores [B,C], low_res [B,C,256,256])."""
        ...


def check_image(image: np.ndarray) -> np.ndarray:
    """The image every backend accepts: uint8 RGB [H, W, 3]; anything else is a clear error."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array (uint8 RGB [H, W, 3]), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be RGB [H, W, 3], got shape {tuple(image.shape)}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0..255), got {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {tuple(image.shape)}")
    return image


def check_prompts(points: torch.Tensor | None, labels: torch.Tensor | None, boxes: torch.Tensor | None,
                  mask_input: torch.Tensor | None) -> int:
    """Validate one decode call's prompts against the protocol's shapes; returns the batch size B."""
    if points is None and boxes is None and mask_input is None:
        raise ValueError("give at least one prompt: points (with labels), a box or a mask_input")
    if (points is None) != (labels is None):
        raise ValueError("points and labels go together: give both or neither")
    sizes = {}
    if points is not None:
        if points.ndim != 3 or points.shape[-1] != 2:
            raise ValueError(f"points must be [B, N, 2] (x, y), got {tuple(points.shape)}")
        if labels.shape != points.shape[:2]:
            raise ValueError(f"labels must be [B, N] = {tuple(points.shape[:2])}, got {tuple(labels.shape)}")
        sizes["points"] = points.shape[0]
    if boxes is not None:
        if boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"boxes must be [B, 4] (x0, y0, x1, y1), got {tuple(boxes.shape)}")
        sizes["boxes"] = boxes.shape[0]
    if mask_input is not None:
        if mask_input.ndim != 4 or tuple(mask_input.shape[1:]) != (1, LOW_RES, LOW_RES):
            raise ValueError(f"mask_input must be [B, 1, {LOW_RES}, {LOW_RES}] low-res logits, "
                             f"got {tuple(mask_input.shape)}")
        sizes["mask_input"] = mask_input.shape[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(f"prompt batch sizes differ: {sizes}")
    return next(iter(sizes.values()))
