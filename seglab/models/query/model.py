"""The query-based mask-classification network (MaskFormer / Mask2Former), on any seglab encoder.

    input (zero-padded to `multiple`) -> encoder -> pixel decoder (FPN): per-pixel embeddings at
    `mask_stride` + three levels -> transformer decoder: `num_queries` learned queries, `decoder_layers`
    layers of masked cross-attention, self-attention, FFN -> per query: class logits over K + 1
    ("no object" last) and mask logits = its embedding . the per-pixel embeddings.

`MaskClassifier` is the one core; the task entries are thin subclasses that declare how their
targets become segments and which inference rule reads the outputs (seglab/models/query/tasks.py).
`forward_raw(x)` is the network alone, (class logits [N, Q, K + 1], mask logits [N, Q, H' / s, W' / s])
with H', W' the padded size; it traces to ONNX with dynamic batch, height and width.
Training: `losses(x, segments)`, the Hungarian-matched set loss of seglab/models/query/loss.py
summed over the final and every intermediate prediction (auxiliary losses).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seglab.encoders import build_encoder
from seglab.models.blocks import single_width
from seglab.models.padding import pad_to_multiple
from seglab.models.query.decoder import QueryDecoder
from seglab.models.query.loss import MASK_TARGETS, set_losses
from seglab.models.query.pixel_decoder import DECODER_LEVELS, PixelDecoder


class MaskClassifier(nn.Module):
    """N learned queries, each a class (or "no object") and a mask; see the module docstring."""

    default_encoder = "efficientnet_lite0"  # encoder="" means this (ImageNet weights: encoder_weights=imagenet)
    default_width = 128  # decoder_channels: pixel decoder, query and mask-embedding width
    # the set loss (and matching cost) weights of Mask2Former, and its "no object" class weight
    loss_weights = {"class": 2.0, "mask": 5.0, "dice": 5.0}
    no_object_weight = 0.1
    raw_outputs = ("class_logits", "mask_logits")  # what forward_raw returns (the ONNX output names)
    located = True  # queries have a place (seglab/models/query/decoder.py); False for class-wide segments

    def __init__(self, num_classes: int, encoder: str = "", encoder_weights: str = "", in_channels: int = 3,
                 num_queries: int = 100, decoder_channels: int | list | None = None, decoder_layers: int = 3,
                 mask_stride: int = 4, mask_points: int = 512, query_spread: float = 0.1,
                 mask_loss: str = "points"):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if num_queries < 1 or decoder_layers < 1 or mask_points < 2:
            raise ValueError(f"num_queries ({num_queries}) and decoder_layers ({decoder_layers}) must be at least 1, "
                             f"mask_points ({mask_points}) at least 2")
        if mask_loss not in MASK_TARGETS:
            raise ValueError(f"mask_loss must be one of {', '.join(MASK_TARGETS)}, got {mask_loss!r}")
        width = single_width(decoder_channels, self.default_width)
        if width % 32:
            raise ValueError(f"decoder_channels must be a multiple of 32 (heads of 32 channels), got {width}")
        self.num_classes, self.num_queries, self.mask_stride = num_classes, num_queries, int(mask_stride)
        self.encoder = build_encoder(encoder or self.default_encoder, in_channels, encoder_weights)
        self.normalization = {k: list(v) for k, v in self.encoder.normalization.items()}
        self.multiple = math.lcm(self.encoder.multiple, 32)
        self.pixel_decoder = PixelDecoder(self.encoder.reductions, self.encoder.out_channels, width, width,
                                          self.mask_stride)
        self.decoder = QueryDecoder(num_classes, num_queries, width, width, decoder_layers, heads=width // 32,
                                    ffn=4 * width, levels=DECODER_LEVELS, located=self.located,
                                    initial_spread=query_spread)
        self.loss_options = {"weights": dict(self.loss_weights), "no_object_weight": self.no_object_weight,
                             "points": int(mask_points), "mask_loss": mask_loss}

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros (the mean colour after normalisation) on the right and bottom up to `multiple`."""
        return pad_to_multiple(x, self.multiple, mode="constant")

    def predictions(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(class logits, mask logits)] before the first decoder layer and after each, for the padded x."""
        x = self.pad(x)
        pixels, levels = self.pixel_decoder(self.encoder(x), x.shape[-2:])
        return self.decoder(pixels, levels)

    def forward_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits [N, Q, K + 1], mask logits [N, Q, H' / mask_stride, W' / mask_stride]); H', W' padded."""
        return self.predictions(x)[-1]

    def losses(self, x: torch.Tensor, segments: list[dict]) -> dict[str, torch.Tensor]:
        """The set loss for a batch and its segments (one dict per image, seglab/models/query/targets.py)."""
        if len(segments) != x.shape[0]:
            raise ValueError(f"{x.shape[0]} images but {len(segments)} targets")
        for segment in segments:
            if tuple(segment["valid"].shape) != tuple(x.shape[-2:]):
                raise ValueError(f"targets of size {tuple(segment['valid'].shape)} for images of size "
                                 f"{tuple(x.shape[-2:])}")
        padded = tuple(-(-s // self.multiple) * self.multiple for s in x.shape[-2:])
        return set_losses(self.predictions(x), segments, padded, self.loss_options)
