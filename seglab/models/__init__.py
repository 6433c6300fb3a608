"""Model registry: architecture name -> class. Every class takes `num_classes` and `in_channels`.

`build_model(name, num_classes, **options)` passes each option the constructor accepts and ignores
the rest, so one config serves every architecture; the checkpoint stores the exact arguments used.
"""

from __future__ import annotations

import inspect

from torch import nn

from seglab.models.unet import UNet

MODELS: dict[str, type[nn.Module]] = {
    "unet": UNet,
}


def model_class(name: str) -> type[nn.Module]:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model '{name}'. Valid models: {', '.join(sorted(MODELS))}") from None


def model_arguments(name: str, num_classes: int, options: dict) -> dict:
    """The constructor arguments for `name`: num_classes plus those options its signature names."""
    params = inspect.signature(model_class(name)).parameters
    args = {k: v for k, v in options.items() if k in params and k != "num_classes"}
    return {"num_classes": num_classes, **args}


def build_model(name: str, args: dict) -> nn.Module:
    return model_class(name)(**args)
