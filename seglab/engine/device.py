"""One code path for CPU and CUDA: pick the device, the precision and the memory layout."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN runs bf16 natively (AVX512-BF16 or AMX); emulated bf16 is many times slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name}: CUDA is not available on this machine; use device=cpu or auto")
    return device


def pick_precision(name: str, device: torch.device) -> str:
    """auto: bf16 where the hardware runs it natively, fp16 AMP on older CUDA GPUs, fp32 otherwise."""
    if name not in ("auto", *DTYPES):
        raise ValueError(f"precision={name!r}: expected auto, {', '.join(DTYPES)}")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


@dataclass
class Runtime:
    """Where and how tensors are computed; `autocast()` and `to_input()` are the only places that care."""

    device: torch.device
    precision: str
    channels_last: bool

    @classmethod
    def from_config(cls, device: str, precision: str, channels_last: bool) -> "Runtime":
        dev = pick_device(device)
        return cls(dev, pick_precision(precision, dev), channels_last)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        dtype = DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device, memory_format=self.memory_format)

    def describe(self) -> str:
        layout = "channels_last" if self.channels_last else "NCHW"
        why = ""
        if self.device.type == "cpu" and self.precision == "fp32" and not cpu_has_fast_bf16():
            why = " (this CPU has no native bf16)"
        return f"device={self.device} precision={self.precision}{why} layout={layout}"


def normalize(images: torch.Tensor, mean: list[float], std: list[float], runtime: Runtime) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> float, normalised, on the device, in the runtime's layout."""
    x = images.to(runtime.device, non_blocking=True).float()
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1) * 255.0
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1) * 255.0
    return ((x - m) / s).contiguous(memory_format=runtime.memory_format)
