"""Building blocks shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def resize(x: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def bilinear_kernel(channels: int, kernel: int) -> torch.Tensor:
    """Weights that make a ConvTranspose2d(channels, channels, kernel) a per-channel bilinear upsampler."""
    factor = (kernel + 1) // 2
    center = factor - 1 if kernel % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(kernel, dtype=torch.float32) - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel, kernel)
    weight[range(channels), range(channels)] = ramp[:, None] * ramp[None, :]
    return weight


def transposed_upsampler(channels: int, factor: int) -> nn.Module:
    """Learnable x`factor` upsampling (FCN): ConvTranspose2d(2f, stride f) started as bilinear; f = 1 is identity."""
    if factor == 1:
        return nn.Identity()
    if factor % 2:
        raise ValueError(f"transposed upsampling needs an even factor, got {factor}")
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    up.weight.data.copy_(bilinear_kernel(channels, 2 * factor))
    return up


def transposed_stage(cin: int, cout: int, factor: int) -> nn.ConvTranspose2d:
    """3x3 transposed conv that multiplies the size by exactly `factor` (1 keeps it)."""
    return nn.ConvTranspose2d(cin, cout, 3, stride=factor, padding=1, output_padding=factor - 1, bias=False)


def max_unpool(x: torch.Tensor, indices: torch.Tensor, size) -> torch.Tensor:
    """Max-unpooling ("bed of nails"): each value goes back where its max came from; zeros elsewhere.

    Same result as F.max_unpool2d, written with scatter so it exports to ONNX.
    """
    n, c = x.shape[:2]
    out = x.new_zeros(n, c, size[0] * size[1])
    return out.scatter(2, indices.flatten(2), x.flatten(2)).reshape(n, c, size[0], size[1])


def channel_list(value, default: list[int], length: int, what: str) -> list[int]:
    """decoder_channels as given (None -> default; an int -> that width everywhere), checked for length."""
    if value is None or value == "":
        value = default
    if isinstance(value, int):
        value = [value] * length
    value = [int(v) for v in value]
    if len(value) != length:
        raise ValueError(f"{what}: decoder_channels needs {length} widths, got {value}")
    return value


def single_width(value, default: int) -> int:
    """decoder_channels for decoders with one width (None -> default; [w] -> w)."""
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"this decoder has one width; decoder_channels={value}")
        value = value[0]
    return int(value)


class GemmConv2d(nn.Conv2d):
    """A stride-1 Conv2d that trains as im2col + one matrix multiply.

    oneDNN's weight gradient for a large kernel on a small map (FCN's fc6: 7x7, 512 -> 4096, on the
    4x4 map of a 128x128 input) runs at ~0.3 GFLOP/s on CPU, 39 s per call here; as unfold + matmul
    it is one GEMM (~90x faster). Same parameters and state dict as nn.Conv2d; without gradients
    (inference, export) it is the plain convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() or self.stride != (1, 1) or self.groups != 1 or self.padding_mode != "zeros" \
                or isinstance(self.padding, str):
            return super().forward(x)
        b, _, h, w = x.shape
        kh, kw = self.kernel_size
        (ph, pw), (dh, dw) = self.padding, self.dilation
        out_h, out_w = h + 2 * ph - dh * (kh - 1), w + 2 * pw - dw * (kw - 1)
        cols = F.unfold(x.contiguous(), self.kernel_size, dilation=self.dilation, padding=self.padding)
        out = self.weight.reshape(self.out_channels, -1) @ cols
        if self.bias is not None:
            out = out + self.bias[:, None]
        return out.reshape(b, self.out_channels, out_h, out_w)
