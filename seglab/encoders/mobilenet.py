"""torchvision MobileNetV2 as encoders, with two declared tap sets.

- `mobilenet_v2`: block outputs features.1/3/6/13 and the final 1x1 conv features.18.
- `mobilenet_v2_pix2pix`: the TensorFlow segmentation tutorial's taps, named as Keras names them.
  Keras block_k is torchvision features[k + 1]; `block_k_expand_relu` is the output of that block's
  expansion conv + BN + ReLU6 (`features.{k+1}.conv.0`), before its strided depthwise conv, and
  `block_16_project` is the projection conv of the last block before its batch norm (`features.17.conv.2`).
"""

from __future__ import annotations

from functools import partial

import torchvision

from seglab.encoders.base import EncoderSpec, TorchvisionWeights
from seglab.encoders.taps import TapEncoder, add_body_prefix

REDUCTIONS = [2, 4, 8, 16, 32]
BLOCK_TAPS = (["features.1", "features.3", "features.6", "features.13", "features.18"], [16, 24, 32, 96, 1280])
PIX2PIX_TAPS = (  # block_1/3/6/13_expand_relu, block_16_project
    ["features.2.conv.0", "features.4.conv.0", "features.7.conv.0", "features.14.conv.0", "features.17.conv.2"],
    [96, 144, 192, 576, 320],
)


def mobilenet_v2(taps: tuple[list[str], list[int]]) -> TapEncoder:
    return TapEncoder(torchvision.models.mobilenet_v2(weights=None), taps[0], taps[1], REDUCTIONS)


WEIGHTS = TorchvisionWeights("MobileNet_V2_Weights.IMAGENET1K_V2")
MOBILENETS = {
    "mobilenet_v2": EncoderSpec(partial(mobilenet_v2, BLOCK_TAPS), WEIGHTS, convert=add_body_prefix,
                                about="torchvision MobileNetV2, block outputs"),
    "mobilenet_v2_pix2pix": EncoderSpec(partial(mobilenet_v2, PIX2PIX_TAPS), WEIGHTS, convert=add_body_prefix,
                                        about="torchvision MobileNetV2, the TF tutorial's expand_relu taps"),
}
