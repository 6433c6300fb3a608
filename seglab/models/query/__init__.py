"""Query-based mask classification (DETR / MaskFormer / Mask2Former) on seglab's encoders.

One network (`model.MaskClassifier`: encoder -> FPN pixel decoder -> transformer decoder of learned
queries -> per query a class or "no object" and a mask) and one entry per task (`tasks.py`):
semantic ("maskformer_semantic"), instance ("maskformer_instance") and panoptic ("maskformer").
Files: pixel_decoder, decoder (the network), targets (task targets -> segments), matcher (Hungarian
matching on sampled points), loss (the set loss), inference (MaskFormer's semantic / panoptic /
instance rules).
"""

from seglab.models.query.model import MaskClassifier
from seglab.models.query.tasks import MaskFormerInstance, MaskFormerPanoptic, MaskFormerSemantic

__all__ = ["MaskClassifier", "MaskFormerInstance", "MaskFormerPanoptic", "MaskFormerSemantic"]
