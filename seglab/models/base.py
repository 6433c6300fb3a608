"""What every encoder-based model shares: the encoder, input padding and cropping, the normalisation.

`forward` is written once here: pad the input (edge values) to a multiple of the encoder's
reductions, run the encoder and the architecture's `decode(features, size)`, which returns logits at
`size` (the padded input size; `padded_forward`), and crop back: any input size gives logits at
input resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from seglab.encoders import Encoder, build_encoder
from seglab.models.padding import pad_to_multiple


class SegmentationModel(nn.Module):
    default_encoder = "resnet34"

    def make_encoder(self, encoder: str, in_channels: int, encoder_weights: str | None, output_stride: int = 32) -> Encoder:
        self.encoder = build_encoder(encoder or self.default_encoder, in_channels, encoder_weights, output_stride)
        self.normalization = {k: list(v) for k, v in self.encoder.normalization.items()}
        return self.encoder

    @property
    def multiple(self) -> int:
        return self.encoder.multiple

    def decode(self, features: list[torch.Tensor], size) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        return self.padded_forward(pad_to_multiple(x, self.multiple))[..., :height, :width]

    def padded_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for an input whose sizes are multiples of `self.multiple`."""
        return self.decode(self.encoder(x), x.shape[-2:])
