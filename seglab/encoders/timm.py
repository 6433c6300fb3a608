"""Any timm model as an encoder (optional dependency): `encoder=timm:<model name>`, e.g. timm:resnet18.

timm's `features_only=True` gives the feature pyramid and declares it (`feature_info.channels()`,
`.reduction()`); the pretrained config gives the input normalisation. `encoder_weights=imagenet`
uses timm's own download and cache; a path is loaded through timm's `pretrained_cfg_overlay`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from seglab.encoders.base import Encoder, EncoderWeightsError

PREFIX = "timm:"


class TimmEncoder(Encoder):
    def __init__(self, name: str, in_channels: int = 3, weights: str = "", output_stride: int = 32):
        super().__init__()
        try:
            import timm
        except ImportError:
            raise ValueError(f"encoder {PREFIX}{name} needs timm: pip install timm") from None
        if name not in timm.list_models(pretrained=False) and name not in timm.list_models(pretrained=True):
            raise KeyError(f"unknown timm model '{name}' (see timm.list_models())")
        kwargs = {"features_only": True, "in_chans": in_channels}
        if output_stride != 32:
            kwargs["output_stride"] = output_stride
        if weights and weights != "imagenet":
            if not Path(weights).is_file():
                raise EncoderWeightsError(f"encoder_weights={weights}: no such file")
            kwargs["pretrained_cfg_overlay"] = {"file": str(weights)}
        try:
            self.model = timm.create_model(name, pretrained=bool(weights), **kwargs)
        except (OSError, RuntimeError, ValueError) as e:
            if not weights:
                raise
            raise EncoderWeightsError(self._how_to_get(timm, name, weights, e)) from None
        self.out_channels = list(self.model.feature_info.channels())
        self.reductions = list(self.model.feature_info.reduction())
        cfg = self.model.pretrained_cfg
        mean, std = list(cfg.get("mean", (0.485, 0.456, 0.406))), list(cfg.get("std", (0.229, 0.224, 0.225)))
        if in_channels != len(mean):
            mean, std = [sum(mean) / len(mean)] * in_channels, [sum(std) / len(std)] * in_channels
        self.normalization = {"mean": mean, "std": std}

    @staticmethod
    def _how_to_get(timm, name: str, weights: str, error: Exception) -> str:
        if weights != "imagenet":
            return f"encoder_weights={weights} does not fit timm's {name} ({type(error).__name__}: {error})"
        cfg = timm.models.get_pretrained_cfg(name)
        hub = getattr(cfg, "hf_hub_id", None) if cfg else None
        where = (f"https://huggingface.co/{hub}/resolve/main/model.safetensors" if hub
                 else getattr(cfg, "url", None) or "timm's model hub")
        try:
            from huggingface_hub.constants import HF_HUB_CACHE as cache
        except ImportError:
            cache = Path.home() / ".cache" / "huggingface" / "hub"
        return (f"could not get timm's pretrained weights for {name} ({type(error).__name__}: {str(error)[:200]}). "
                f"Offline? Download {where} and pass encoder_weights=/path/to/that/file, or fill the Hugging Face "
                f"cache ({cache}) on a machine with a network")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x)

    def set_output_stride(self, output_stride: int) -> None:
        """timm dilates when the model is built (build_encoder(..., output_stride=)); nothing to do later."""
