"""Training targets and losses of the bottom-up panoptic model (Panoptic-DeepLab's, with object-size-aware sigmas).

Targets, per image, from the batch's {"semantic" [H, W] (255 void), "instances" [H, W] (0 none, k > 0 a thing)}:
- centre of an instance = its centre of mass (mean pixel row and column, not rounded);
- heatmap = max over instances of a Gaussian at the centre with sigma = clip(sigma_scale * sqrt(area),
  sigma_min, sigma_max): a 6-px nucleus gets a sharp 2-px peak, a 100-px object an 8-px one, so
  neighbouring small objects keep separate peaks. Built in one scatter (windows of 3 sigma around each
  centre), no per-instance Python loop;
- offsets = centre - pixel (dy, dx) on the instance's pixels, 0 elsewhere.
Losses (predictions upsampled bilinearly from the output stride to the input's size first: the small objects
of nuclei images are 1-2 cells wide at stride 4):
- semantic: cross-entropy, 255 ignored, averaged over the `semantic_top_k` fraction of hardest pixels
  (bootstrapped CE; 1.0 = plain CE);
- heatmap: MSE over non-void pixels;
- offsets: L1 (|dy| + |dx|) averaged over thing pixels only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE = 255


def centre_targets(instances: torch.Tensor, sigma_scale: float = 0.125, sigma_min: float = 2.0,
                   sigma_max: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Instance map [H, W] (0 = none) -> (heatmap [H, W] float in [0, 1], offsets [2, H, W] (dy, dx) float)."""
    height, width = instances.shape
    device = instances.device
    heatmap = torch.zeros(height * width, device=device)
    offsets = torch.zeros(2, height, width, device=device)
    things = instances > 0
    if not things.any():
        return heatmap.view(height, width), offsets
    ys, xs = torch.nonzero(things, as_tuple=True)
    _, label = torch.unique(instances[things], return_inverse=True)
    count = int(label.max()) + 1
    area = torch.bincount(label, minlength=count).float()
    cy = torch.bincount(label, weights=ys.float(), minlength=count) / area
    cx = torch.bincount(label, weights=xs.float(), minlength=count) / area
    offsets[0, ys, xs] = cy[label] - ys.float()
    offsets[1, ys, xs] = cx[label] - xs.float()

    sigma = (sigma_scale * area.sqrt()).clamp(sigma_min, sigma_max)
    radius = math.ceil(3 * float(sigma.max()))
    window = torch.arange(-radius, radius + 1, device=device)
    py = cy.round().long()[:, None, None] + window[None, :, None]  # [K, w, 1]
    px = cx.round().long()[:, None, None] + window[None, None, :]  # [K, 1, w]
    py, px = torch.broadcast_tensors(py, px)
    value = torch.exp(-((py - cy[:, None, None]) ** 2 + (px - cx[:, None, None]) ** 2)
                      / (2 * sigma[:, None, None] ** 2))
    inside = (py >= 0) & (py < height) & (px >= 0) & (px < width)
    heatmap.scatter_reduce_(0, (py * width + px)[inside], value[inside], reduce="amax")
    return heatmap.view(height, width), offsets


def upsample_to(x: torch.Tensor, stride: int, size: tuple[int, int]) -> torch.Tensor:
    """Output-stride maps -> input resolution (bilinear), cropped to `size` (the targets' height and width)."""
    x = F.interpolate(x, scale_factor=float(stride), mode="bilinear", align_corners=False)
    if x.shape[-2] < size[0] or x.shape[-1] < size[1]:
        raise ValueError(f"targets of size {tuple(size)} are larger than the input the network saw "
                         f"({tuple(x.shape[-2:])} after upsampling)")
    return x[..., :size[0], :size[1]]


def bootstrapped_cross_entropy(logits: torch.Tensor, semantic: torch.Tensor, top_k: float) -> torch.Tensor:
    per_pixel = F.cross_entropy(logits, semantic, ignore_index=IGNORE, reduction="none")
    per_pixel = per_pixel[semantic != IGNORE]
    if per_pixel.numel() == 0:
        return logits.sum() * 0
    if top_k < 1:
        per_pixel = per_pixel.topk(max(1, math.ceil(top_k * per_pixel.numel())), sorted=False).values
    return per_pixel.mean()


def check_targets(targets: list[dict]) -> None:
    """Every target has both [H, W] maps, all of one size (the batch pads them)."""
    for i, t in enumerate(targets):
        for key in ("semantic", "instances"):
            if key not in t:
                raise KeyError(f"target {i} has no '{key}' (panoptic targets are {{'semantic', 'instances'}} maps)")
    size = tuple(targets[0]["semantic"].shape[-2:])
    if any(tuple(t["semantic"].shape[-2:]) != size or tuple(t["instances"].shape[-2:]) != size for t in targets):
        raise ValueError("the targets of a batch must all have the same [H, W] (the batch pads them)")


def bottomup_losses(raw: tuple, targets: list[dict], options: dict) -> dict[str, torch.Tensor]:
    """raw = forward_raw's (semantic, heatmap, offsets); targets as the module docstring says -> scalar losses."""
    semantic_logits, heatmap, offsets = (r.float() for r in raw)  # fp32 losses under bf16 / fp16 autocast
    check_targets(targets)
    size = tuple(targets[0]["semantic"].shape[-2:])
    stride = options["stride"]
    semantic_logits = upsample_to(semantic_logits, stride, size)
    heatmap = upsample_to(heatmap, stride, size)[:, 0]
    offsets = upsample_to(offsets, stride, size)

    semantic = torch.stack([t["semantic"].long() for t in targets])
    instances = torch.stack([t["instances"].long() for t in targets])
    built = [centre_targets(inst, options["sigma_scale"], options["sigma_min"], options["sigma_max"])
             for inst in instances]
    heatmap_target = torch.stack([b[0] for b in built])
    offset_target = torch.stack([b[1] for b in built])

    valid = (semantic != IGNORE).float()
    things = (instances > 0).float()
    weights = options["weights"]
    losses = {
        "semantic": bootstrapped_cross_entropy(semantic_logits, semantic, options["semantic_top_k"]),
        "heatmap": ((heatmap - heatmap_target) ** 2 * valid).sum() / valid.sum().clamp(min=1),
        "offsets": ((offsets - offset_target).abs().sum(1) * things).sum() / things.sum().clamp(min=1),
    }
    return {name: weights[name] * value for name, value in losses.items()}
