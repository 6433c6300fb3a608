"""Using a trained model: logits to labels at each image's own size, colour masks and overlays."""

from seglab.inference.overlay import colorize, overlay, side_by_side
from seglab.inference.predictor import Predictor, labels_at_size

__all__ = ["Predictor", "colorize", "labels_at_size", "overlay", "side_by_side"]
