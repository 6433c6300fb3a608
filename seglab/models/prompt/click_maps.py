"""Prompts as image-like maps on the model's output grid (stride 4 of the square input).

- clicks: one Gaussian distance map per polarity, exp(-d^2 / (2 r^2)) with d the distance (input
  pixels) from a grid cell's centre to the nearest click of that polarity; the maximum over clicks,
  so a map is 1 at a click and falls off within a few `radius`. Padding clicks (label -1) add nothing.
- box: 1 on the cells whose centre lies inside the box, else 0 (all 0 when no box is given).
- previous mask: sigmoid of the previous logits (resized to the grid), 0 when there is none.

Coordinates are (x, y) in input pixels, continuous: pixel column i spans [i, i + 1), so a click on
pixel (i, j) is at (i + 0.5, j + 0.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PROMPT_CHANNELS = 4  # positive clicks, negative clicks, previous mask, box


def grid_centres(height: int, width: int, stride: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Input-pixel coordinates of the centres of a [height, width] grid of `stride`-pixel cells."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * stride
    return ys, xs


def click_maps(points: torch.Tensor | None, labels: torch.Tensor | None, batch: int, size: tuple[int, int],
               stride: int, radius: float) -> torch.Tensor:
    """[B, 2, h, w]: positive and negative click maps. points float [B, N, 2] (x, y) input pixels,
    labels int [B, N] (1 positive, 0 negative, -1 padding)."""
    height, width = size
    device = points.device if points is not None else torch.device("cpu")
    out = torch.zeros(batch, 2, height, width, device=device)
    if points is None or points.shape[1] == 0:
        return out
    ys, xs = grid_centres(height, width, stride, device)
    dy = ys.view(1, 1, height, 1) - points[..., 1].float().view(batch, -1, 1, 1)  # [B, N, h, 1]
    dx = xs.view(1, 1, 1, width) - points[..., 0].float().view(batch, -1, 1, 1)  # [B, N, 1, w]
    gauss = torch.exp(-(dy * dy + dx * dx) / (2 * radius * radius))  # [B, N, h, w]
    for channel, label in enumerate((1, 0)):
        keep = (labels == label).to(gauss.dtype).view(batch, -1, 1, 1)
        out[:, channel] = (gauss * keep).amax(dim=1)
    return out


def box_map(boxes: torch.Tensor | None, batch: int, size: tuple[int, int], stride: int, device) -> torch.Tensor:
    """[B, 1, h, w]: 1 where a cell centre is inside the box (x0, y0, x1, y1 input pixels)."""
    height, width = size
    if boxes is None:
        return torch.zeros(batch, 1, height, width, device=device)
    ys, xs = grid_centres(height, width, stride, boxes.device)
    b = boxes.float()
    inside_y = (ys.view(1, -1) >= b[:, 1:2]) & (ys.view(1, -1) <= b[:, 3:4])  # [B, h]
    inside_x = (xs.view(1, -1) >= b[:, 0:1]) & (xs.view(1, -1) <= b[:, 2:3])  # [B, w]
    return (inside_y[:, :, None] & inside_x[:, None, :]).float()[:, None]


def previous_mask_map(prev_logits: torch.Tensor | None, batch: int, size: tuple[int, int], device) -> torch.Tensor:
    """[B, 1, h, w]: sigmoid of the previous logits [B, 1, h', w'] resized to the grid; 0 without them."""
    if prev_logits is None:
        return torch.zeros(batch, 1, *size, device=device)
    prev = prev_logits.float()
    if tuple(prev.shape[-2:]) != tuple(size):
        prev = F.interpolate(prev, size=size, mode="bilinear", align_corners=False)
    return torch.sigmoid(prev)


def prompt_maps(points, labels, boxes, prev_logits, batch: int, size: tuple[int, int], stride: int,
                radius: float, device) -> torch.Tensor:
    """[B, PROMPT_CHANNELS, h, w]: every prompt on the grid, in the channel order the model expects."""
    clicks = click_maps(points, labels, batch, size, stride, radius).to(device)
    return torch.cat([clicks, previous_mask_map(prev_logits, batch, size, device),
                      box_map(boxes, batch, size, stride, device).to(device)], dim=1)
