"""seglab metrics: one streaming confusion matrix and everything derived from it.

- ``ConfusionMatrix``: dataset reduction (counts over all pixels, then scores); the core.
- ``PerImageMetrics``: per-image reduction (scores per image, then averaged over images).
- ``BoundaryF1``: Csurka et al.'s BF score.
- ``SegmentationMetrics``: all of them from one update, with named sections.
- ``format_class_table``: per-class text table; ``logits_to_labels``: logits -> labels by mode.
"""
from .boundary import BoundaryF1, image_boundary_f1
from .confusion import ConfusionMatrix, batch_confusion
from .modes import BINARY, MODES, MULTICLASS, check_mode, infer_mode, logits_to_labels
from .per_image import PerImageMetrics
from .scores import scores_from_counts
from .suite import SegmentationMetrics
from .table import format_class_table

__all__ = [
    "ConfusionMatrix", "PerImageMetrics", "BoundaryF1", "SegmentationMetrics", "batch_confusion",
    "image_boundary_f1", "scores_from_counts", "format_class_table",
    "BINARY", "MULTICLASS", "MODES", "check_mode", "infer_mode", "logits_to_labels",
]
