"""Model registry: architecture name -> class. Every class takes `num_classes` and `in_channels`.

`build_model(name, num_classes, **options)` passes each option the constructor accepts and ignores
the rest, so one config serves every architecture; the checkpoint stores the exact arguments used.
Encoder-based models (all but the classic `unet`) take `encoder` ("" = the model's default; see
seglab.encoders.ENCODERS) and `encoder_weights` ("" | imagenet | path), and expose `normalization`.
"""

from __future__ import annotations

import inspect

from torch import nn

from seglab.models.deeplabv3plus import DeepLabV3Plus
from seglab.models.fcn import FCN8s, FCN16s, FCN32s
from seglab.models.instance import INSTANCE_MODELS
from seglab.models.panoptic import PANOPTIC_MODELS
from seglab.models.pix2pix import Pix2Pix
from seglab.models.prompt import PROMPT_MODELS
from seglab.models.query import MaskFormerSemantic
from seglab.models.segformer import SegFormer
from seglab.models.segnet import SegNet
from seglab.models.setr import SETRMLA, SETRPUP, SETRNaive
from seglab.models.unet import UNet
from seglab.models.unet_encoder import UNetEncoder
from seglab.models.video import VIDEO_MODELS

MODELS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "unet_encoder": UNetEncoder,
    "pix2pix": Pix2Pix,
    "fcn32s": FCN32s,
    "fcn16s": FCN16s,
    "fcn8s": FCN8s,
    "segnet": SegNet,
    "setr_naive": SETRNaive,
    "setr_pup": SETRPUP,
    "setr_mla": SETRMLA,
    "segformer": SegFormer,
    "deeplabv3plus": DeepLabV3Plus,
    "maskformer_semantic": MaskFormerSemantic,
}


# Every task's architecture registry, and the model `seglab train` builds when none is named.
TASK_MODELS: dict[str, dict[str, type[nn.Module]]] = {"semantic": MODELS, "instance": INSTANCE_MODELS,
                                                      "panoptic": PANOPTIC_MODELS, "prompt": PROMPT_MODELS,
                                                      "video": VIDEO_MODELS}

DEFAULT_MODELS = {"semantic": "unet", "instance": "maskrcnn", "panoptic": "panoptic_deeplab",
                  "prompt": "click_seg", "video": "memory_tracker"}


def model_task(name: str) -> str | None:
    """The task whose registry holds architecture `name` (None: no task's)."""
    return next((task for task, registry in TASK_MODELS.items() if name in registry), None)


def model_class(name: str) -> type[nn.Module]:
    task = model_task(name)
    if task is None:
        listed = "; ".join(f"{task}: {', '.join(sorted(r))}" for task, r in TASK_MODELS.items())
        raise KeyError(f"unknown model '{name}'. Valid models: {listed}")
    return TASK_MODELS[task][name]


def model_arguments(name: str, num_classes: int, options: dict) -> dict:
    """The constructor arguments for `name`: num_classes plus those options its signature names and sets (an
    option left at null means the constructor's own default: mask_head_channels=null builds 256 channels)."""
    params = inspect.signature(model_class(name)).parameters
    args = {k: v for k, v in options.items() if k in params and k != "num_classes" and v is not None}
    if "is_thing" in params and "is_thing" not in args:  # panoptic models: the data says which classes are things;
        args["is_thing"] = [False] + [True] * (num_classes - 1)  # without data, class 0 is the one stuff class
    return {"num_classes": num_classes, **args}


def build_model(name: str, args: dict, pretrained: bool = True) -> nn.Module:
    """pretrained=False skips fetching encoder weights (rebuilding a checkpoint that brings its own)."""
    if not pretrained and "encoder_weights" in args:
        args = {**args, "encoder_weights": ""}
    return model_class(name)(**args)
