"""seglab losses: ``build_loss(spec, num_classes, ignore_index, class_weights)`` and the LOSSES registry."""
from seglab.metrics.modes import BINARY, MODES, MULTICLASS

from .base import SegLoss
from .build import LOSSES, WeightedSumLoss, build_loss, parse_loss_spec
from .class_weights import median_frequency_weights
from .cross_entropy import CrossEntropyLoss
from .focal import FocalLoss
from .lovasz import LovaszLoss
from .overlap import DiceLoss, TverskyLoss

__all__ = [
    "BINARY", "MULTICLASS", "MODES", "LOSSES", "SegLoss", "WeightedSumLoss", "build_loss", "parse_loss_spec",
    "median_frequency_weights", "CrossEntropyLoss", "DiceLoss", "TverskyLoss", "FocalLoss", "LovaszLoss",
]
