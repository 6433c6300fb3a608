"""A bottom-up panoptic model in the Panoptic-DeepLab way (Cheng et al., CVPR 2020), built for CPU speed.

    encoder (any seglab encoder) -> features at `strides` (chosen by declared reductions)
      -> ASPP-lite on the deepest + FPN top-down decoder to strides[0] (4) -> three heads at that stride:
         semantic logits (num_classes), centre heatmap (1), centre offsets (2: dy, dx in input pixels)
      -> grouping: centres = heatmap peaks (max-pool NMS, threshold, top-k); every thing pixel joins the
         nearest centre to (pixel + offset); class by majority vote; stuff = one segment per class.

`forward_raw(x)` is the network alone (padding included, outputs at stride strides[0] of the padded input)
and exports to ONNX with dynamic height and width (`seglab.export.raw_network.export_raw_onnx`). Targets and losses:
`bottomup_loss`; grouping into the canonical panoptic form: `bottomup_post`. Design notes: docs/panoptic.md.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from seglab.encoders import build_encoder
from seglab.models.blocks import single_width
from seglab.models.instance.onestage_head import pick_taps
from seglab.models.padding import pad_to_multiple
from seglab.models.panoptic.bottomup_head import Decoder, Heads
from seglab.models.panoptic.bottomup_loss import bottomup_losses, check_targets
from seglab.models.panoptic.bottomup_post import panoptic_from_raw


class PanopticDeepLab(nn.Module):
    """Bottom-up panoptic segmentation: semantic + class-agnostic centre heatmap + offsets, grouped after the net."""

    default_encoder = "efficientnet_lite0"  # encoder="" means this (ImageNet weights: encoder_weights=imagenet)
    raw_outputs = ("semantic", "heatmap", "offsets")  # what forward_raw returns (the ONNX output names)

    def __init__(self, num_classes: int, is_thing: list[bool], encoder: str = "", encoder_weights: str = "",
                 in_channels: int = 3, strides: list[int] | None = None,
                 decoder_channels: int | list[int] | None = None, head_width: int = 32, depthwise: bool = False,
                 semantic_weight: float = 1.0, heatmap_weight: float = 200.0, offset_weight: float = 0.02,
                 semantic_top_k: float = 0.2, sigma_scale: float = 0.125, sigma_min: float = 2.0,
                 sigma_max: float = 8.0, heatmap_threshold: float = 0.1, nms_kernel: int = 7,
                 top_k: int = 400, min_area: int = 8, stuff_min_area: int = 64, component_grouping: bool = True):
        super().__init__()
        is_thing = [bool(t) for t in is_thing]
        strides = sorted(int(s) for s in (strides or [4, 8, 16, 32]))
        if num_classes < 2:
            raise ValueError(f"num_classes counts every class, stuff and things (>= 2): got {num_classes}")
        if len(is_thing) != num_classes:
            raise ValueError(f"is_thing needs one flag per class: {num_classes} classes, {len(is_thing)} flags")
        if not any(is_thing):
            raise ValueError("is_thing marks no class as a thing: a bottom-up panoptic model needs one")
        doubling = all(b == 2 * a for a, b in itertools.pairwise(strides))
        if len(strides) < 2 or len(set(strides)) != len(strides) or not doubling:
            raise ValueError(f"strides must double from level to level (e.g. [4, 8, 16, 32]), got {strides}")
        if nms_kernel < 1 or nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel must be odd and >= 1, got {nms_kernel}")
        if not 0 < semantic_top_k <= 1:
            raise ValueError(f"semantic_top_k is the fraction of hardest pixels kept, in (0, 1]: got {semantic_top_k}")
        self.encoder = build_encoder(encoder or self.default_encoder, in_channels, encoder_weights)
        self.normalization = {k: list(v) for k, v in self.encoder.normalization.items()}
        reductions = list(self.encoder.reductions)
        self.num_classes, self.is_thing, self.strides = num_classes, is_thing, strides
        self.output_stride = strides[0]
        self.taps = pick_taps(reductions, strides)
        self.tap_reductions = [reductions[t] for t in self.taps]
        self.multiple = math.lcm(self.encoder.multiple, strides[-1])
        width = single_width(decoder_channels, 64)
        self.decoder = Decoder([self.encoder.out_channels[t] for t in self.taps], width, depthwise)
        self.heads = Heads(width, head_width, num_classes, self.output_stride, depthwise)
        self.loss_options = {"weights": {"semantic": semantic_weight, "heatmap": heatmap_weight,
                                         "offsets": offset_weight},
                             "semantic_top_k": semantic_top_k, "sigma_scale": sigma_scale, "sigma_min": sigma_min,
                             "sigma_max": sigma_max, "stride": self.output_stride}
        self.inference = {"stride": self.output_stride, "threshold": heatmap_threshold, "nms_kernel": nms_kernel,
                          "top_k": top_k, "min_area": min_area, "stuff_min_area": stuff_min_area,
                          "component_grouping": component_grouping}

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros (the mean colour after normalisation) on the right and bottom up to `multiple`."""
        return pad_to_multiple(x, self.multiple, mode="constant")

    def forward_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network alone: (semantic logits [N, C, h, w], centre heatmap [N, 1, h, w], offsets [N, 2, h, w]
        (dy, dx) in input pixels), h, w = the padded input's size / output_stride."""
        x = self.pad(x)
        features = self.encoder(x)
        taps = []
        for tap, reduction, stride in zip(self.taps, self.tap_reductions, self.strides):
            f = features[tap]
            if reduction != stride:  # an encoder without this stride: resample its nearest feature
                f = F.interpolate(f, size=(x.shape[-2] // stride, x.shape[-1] // stride), mode="bilinear",
                                  align_corners=False)
            taps.append(f)
        return self.heads(self.decoder(taps))

    def postprocess(self, raw: tuple, size: tuple) -> list[dict]:
        """Raw outputs (from forward_raw, or onnxruntime's as tensors) -> the contract's list of panoptic dicts."""
        semantic, heatmap, offsets = (torch.as_tensor(r) for r in raw)
        return panoptic_from_raw(semantic, heatmap, offsets, self.is_thing, tuple(int(s) for s in size),
                                 **self.inference)

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None):
        if self.training:
            if targets is None:
                raise ValueError("PanopticDeepLab in training mode needs targets (a list of dicts with semantic, "
                                 "instances); call model.eval() to predict")
            if len(targets) != images.shape[0]:
                raise ValueError(f"{images.shape[0]} images but {len(targets)} targets")
            check_targets(targets)
            return bottomup_losses(self.forward_raw(images), targets, self.loss_options)
        return self.postprocess(self.forward_raw(images), images.shape[-2:])
