"""Padding an image batch on the right and bottom to a multiple of a stride: the one implementation.

Models that need sides divisible by their total stride pad themselves (and crop the output back),
the ONNX backend pads inputs of graphs whose padding was fixed when traced, detection models pad
with zeros. `skip_empty=False` (the models' setting) always emits the pad, even of 0 pixels, so a
traced or exported graph keeps the size arithmetic instead of baking in the example's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MODES = ("replicate", "reflect", "constant")


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "replicate", skip_empty: bool = False) -> torch.Tensor:
    """[..., H, W] -> [..., H', W'] with H', W' the next multiples of `multiple`.

    mode: replicate (edge pixels), reflect (falls back to replicate when an edge is shorter than the pad)
    or constant (zeros: the mean colour after normalisation)."""
    if mode not in MODES:
        raise ValueError(f"pad mode {mode!r}: expected one of {', '.join(MODES)}")
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if skip_empty and not (pad_h or pad_w):
        return x
    if mode == "reflect" and min(height, width) <= max(pad_h, pad_w):
        mode = "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
