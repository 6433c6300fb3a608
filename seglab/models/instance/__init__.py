"""Instance-segmentation model registry: name -> class (not in seglab.models.MODELS, the semantic one).

Every class takes `num_classes` (things, without background), `encoder` and `encoder_weights`, exposes
`normalization`, and follows the contract of torchvision's detection models: `forward(images, targets)`
gives a dict of losses in training and, in eval, one dict per image with boxes, labels (1-based),
scores and masks (docs/instance_models.md).
"""

from __future__ import annotations

from torch import nn

from seglab.models.instance.maskrcnn import MaskRCNN
from seglab.models.instance.onestage import OneStageSeg
from seglab.models.query import MaskFormerInstance

INSTANCE_MODELS: dict[str, type[nn.Module]] = {
    "maskrcnn": MaskRCNN,
    "yolo_seg": OneStageSeg,
    "maskformer_instance": MaskFormerInstance,
}


def instance_model_class(name: str) -> type[nn.Module]:
    try:
        return INSTANCE_MODELS[name]
    except KeyError:
        raise KeyError(f"unknown instance model '{name}'. Valid instance models: {', '.join(sorted(INSTANCE_MODELS))}") from None


def build_instance_model(name: str, args: dict, pretrained: bool = True) -> nn.Module:
    """pretrained=False skips fetching encoder weights (rebuilding a checkpoint that brings its own)."""
    if not pretrained and "encoder_weights" in args:
        args = {**args, "encoder_weights": ""}
    return instance_model_class(name)(**args)
