"""Encoder registry: name -> EncoderSpec (how to build, where ImageNet weights come from, normalisation).

The contract every encoder follows is written in seglab/encoders/base.py: `forward(x)` returns a list
of feature maps at non-increasing resolution, with declared `out_channels` and `reductions`, and the
encoder carries the `normalization` its weights expect. Any timm model works as `timm:<name>`.

    encoder = build_encoder("resnet34", in_channels=3, weights="imagenet")  # or weights="path.pth"
    features = encoder(x)  # [x/2, x/4, x/8, x/16, x/32]
"""

from __future__ import annotations

from seglab.encoders.base import Encoder, EncoderSpec, EncoderWeightsError, load_weights, set_in_channels
from seglab.encoders.efficientnet_lite import LITES
from seglab.encoders.mit import MITS
from seglab.encoders.mobilenet import MOBILENETS
from seglab.encoders.resnet import RESNETS
from seglab.encoders.timm import PREFIX as TIMM_PREFIX
from seglab.encoders.vgg import VGGS
from seglab.encoders.vit import VITS

ENCODERS: dict[str, EncoderSpec] = {**RESNETS, **MOBILENETS, **VGGS, **LITES, **MITS, **VITS}

__all__ = ["ENCODERS", "Encoder", "EncoderSpec", "EncoderWeightsError", "build_encoder", "encoder_spec"]


def encoder_spec(name: str) -> EncoderSpec:
    try:
        return ENCODERS[name]
    except KeyError:
        raise KeyError(f"unknown encoder '{name}'. Valid encoders: {', '.join(ENCODERS)}, "
                       f"or {TIMM_PREFIX}<any timm model name>") from None


def build_encoder(name: str, in_channels: int = 3, weights: str | None = "", output_stride: int = 32) -> Encoder:
    """weights: "" or None (random init), "imagenet" (the declared source) or a path to a state dict."""
    weights = str(weights or "")
    if name.startswith(TIMM_PREFIX):
        from seglab.encoders.timm import TimmEncoder

        return TimmEncoder(name[len(TIMM_PREFIX):], in_channels, weights, output_stride)
    spec = encoder_spec(name)
    encoder = spec.build()
    encoder.normalization = {key: list(values) for key, values in spec.normalization.items()}
    if weights:
        load_weights(encoder, spec, weights, name)
    set_in_channels(encoder, in_channels)
    encoder.set_output_stride(output_stride)
    return encoder
