"""seglab metrics: one streaming confusion matrix and everything derived from it."""
from .confusion import ConfusionMatrix, batch_confusion
from .modes import BINARY, MODES, MULTICLASS, check_mode, infer_mode, logits_to_labels
from .scores import scores_from_counts

__all__ = [
    "ConfusionMatrix", "batch_confusion", "scores_from_counts",
    "BINARY", "MULTICLASS", "MODES", "check_mode", "infer_mode", "logits_to_labels",
]
