"""Fold BatchNorm into the convolution before it, for inference.

In eval mode a BatchNorm is an affine map per channel, so `bn(conv(x))` equals one convolution with
rescaled weights and a bias. Folding saves a full pass over every activation. Only pairs that sit
next to each other in an `nn.Sequential` are folded: there, the BatchNorm always receives exactly that
convolution's output, whatever the model's `forward` does. (Pairs held as attributes, e.g.
`self.conv1` / `self.bn1`, are left alone: this code cannot see how `forward` wires them.)
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

CONVS = (nn.Conv2d, nn.Conv1d, nn.Conv3d)
NORMS = (nn.BatchNorm2d, nn.BatchNorm1d, nn.BatchNorm3d)


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode copy of `model` with conv -> BatchNorm pairs folded; returns (copy, pairs folded)."""
    model = copy.deepcopy(model).eval()
    folded = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module)
        for i in range(len(children) - 1):
            conv, norm = children[i], children[i + 1]
            if isinstance(conv, CONVS) and isinstance(norm, NORMS) and norm.track_running_stats \
                    and norm.running_mean is not None and conv.out_channels == norm.num_features:
                module[i] = fuse_conv_bn_eval(conv, norm)
                module[i + 1] = nn.Identity()
                folded += 1
    return model, folded
