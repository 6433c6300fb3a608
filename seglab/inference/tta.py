"""Test-time augmentation: horizontal flip and rescaled copies, averaged in probability space."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

DEFAULT_SCALES = (0.75, 1.0, 1.25)


def parse_scales(value) -> tuple[float, ...]:
    """None -> the default scales; a number, a list or "0.75,1,1.25" -> a tuple of positive floats."""
    if value is None or value == "":
        return DEFAULT_SCALES
    if isinstance(value, str):
        value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    if isinstance(value, (int, float)):
        value = [value]
    try:
        scales = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"scales={value!r}: expected a list of numbers such as [0.75, 1, 1.25]") from None
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales={value!r}: expected positive numbers such as [0.75, 1, 1.25]")
    return scales


def augmented_probs(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    flip: bool = True, scales=(1.0,)) -> torch.Tensor:
    """Mean softmax over `scales` x (identity[, horizontal flip]) at the input size [N, C, H, W].

    Each scale runs once, the flipped copy in the same batch; logits are flipped back and resized
    (bilinear) to the input size before the softmax.
    """
    height, width = x.shape[-2:]
    total, count = None, 0
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        xs = x if size == (height, width) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        views = torch.cat([xs, xs.flip(-1)]) if flip else xs
        logits = forward(views).float()
        if flip:
            plain, flipped = logits.chunk(2)
            logits = torch.stack([plain, flipped.flip(-1)]).flatten(0, 1)
        if size != (height, width):
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        probs = logits.softmax(1)
        probs = probs.view(2, -1, *probs.shape[1:]).sum(0) if flip else probs
        total = probs if total is None else total + probs
        count += 2 if flip else 1
    return total / count
