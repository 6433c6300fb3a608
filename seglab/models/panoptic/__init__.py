"""Panoptic-segmentation model registry: name -> class (not in seglab.models.MODELS, the semantic one).

Every class takes `num_classes` (all classes, stuff and things, 0-based), `is_thing` (one bool per class),
`encoder` and `encoder_weights`, exposes `multiple` and `normalization`, and follows one contract:
`forward(x, targets)` gives a dict of losses in training; in eval `forward(x)` gives one dict per image
{"segment_ids" [H, W] (0 void), "segments": [{"id", "category_id", "score", "iscrowd"}]}, the canonical
form of seglab/metrics/panoptic.py; `forward_raw(x)` is the exportable network and `postprocess(raw, size)`
the grouping after it.
"""

from __future__ import annotations

from torch import nn

from seglab.models.panoptic.bottomup import PanopticDeepLab
from seglab.models.query import MaskFormerPanoptic

PANOPTIC_MODELS: dict[str, type[nn.Module]] = {
    "panoptic_deeplab": PanopticDeepLab,
    "maskformer": MaskFormerPanoptic,
}


def panoptic_model_class(name: str) -> type[nn.Module]:
    try:
        return PANOPTIC_MODELS[name]
    except KeyError:
        raise KeyError(f"unknown panoptic model '{name}'. "
                       f"Valid panoptic models: {', '.join(sorted(PANOPTIC_MODELS))}") from None


def build_panoptic_model(name: str, args: dict, pretrained: bool = True) -> nn.Module:
    """pretrained=False skips fetching encoder weights (rebuilding a checkpoint that brings its own)."""
    if not pretrained and "encoder_weights" in args:
        args = {**args, "encoder_weights": ""}
    return panoptic_model_class(name)(**args)
