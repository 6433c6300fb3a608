"""The query model's registry entries, one per task, all the same network (`MaskClassifier`).

Each declares how its task's targets become segments and which inference rule reads the outputs:
- `MaskFormerSemantic` (semantic MODELS, "maskformer_semantic"): `set_loss = True`, so the semantic
  trainer hands it the class-id masks (`model(x, labels)` -> loss dict) instead of applying a per-pixel
  loss; `model(x)` returns MaskFormer's semantic scores as log-probabilities [N, K, H, W], so the
  Predictor's softmax / argmax / resizing, the validation loss and the ONNX export work unchanged.
- `MaskFormerInstance` (INSTANCE_MODELS, "maskformer_instance"): every class a thing; targets and
  outputs are torchvision's detection contract (boxes, labels 1-based, scores, masks [M, 1, H, W]).
- `MaskFormerPanoptic` (PANOPTIC_MODELS, "maskformer"): stuff and things; targets {"semantic",
  "instances"}; outputs the canonical panoptic form {"segment_ids", "segments"}.
"""

from __future__ import annotations

import torch

from seglab.models.query.inference import instances, panoptic, semantic_log_probs
from seglab.models.query.model import MaskClassifier
from seglab.models.query.targets import instance_segments, panoptic_segments, semantic_segments


def _require_targets(model, images: torch.Tensor, targets, what: str) -> None:
    if targets is None:
        raise ValueError(f"{type(model).__name__} in training mode needs targets ({what}); call model.eval() "
                         "to predict")
    if len(targets) != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {len(targets)} targets")


class MaskFormerSemantic(MaskClassifier):
    """Semantic segmentation by mask classification; eval (and train without labels) -> log-probs [N, K, H, W]."""

    set_loss = True  # computes its own (set) loss from (x, class-id masks): see seglab/engine/trainer.py
    located = False  # a segment is all of a class's pixels, wherever they are: no place per query

    def __init__(self, num_classes: int, encoder: str = "", encoder_weights: str = "", in_channels: int = 3,
                 num_queries: int = 100, decoder_channels: int | list | None = None, decoder_layers: int = 3,
                 mask_loss: str = "points"):
        # only options that are config keys (semantic models take nothing else); mask stride 4, 512 points
        super().__init__(num_classes, encoder, encoder_weights, in_channels, num_queries, decoder_channels,
                         decoder_layers, mask_loss=mask_loss)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        if labels is not None:
            return self.losses(x, [semantic_segments(y, self.num_classes) for y in labels])
        return semantic_log_probs(*self.forward_raw(x), self.mask_stride, tuple(x.shape[-2:]))


class MaskFormerInstance(MaskClassifier):
    """Instance segmentation by mask classification (num_classes: the thing classes, background excluded)."""

    def __init__(self, num_classes: int, encoder: str = "", encoder_weights: str = "", in_channels: int = 3,
                 num_queries: int = 100, decoder_channels: int | list | None = None, decoder_layers: int = 3,
                 mask_stride: int = 4, mask_points: int = 512, query_spread: float = 0.1,
                 mask_loss: str = "points", score_threshold: float = 0.05, max_detections: int = 100):
        super().__init__(num_classes, encoder, encoder_weights, in_channels, num_queries, decoder_channels,
                         decoder_layers, mask_stride, mask_points, query_spread, mask_loss)
        self.inference = {"score_threshold": float(score_threshold), "max_detections": int(max_detections)}

    def postprocess(self, raw: tuple, size: tuple) -> list[dict]:
        class_logits, mask_logits = raw
        things = [True] * self.num_classes
        return [instances(c, m, self.mask_stride, tuple(size), things, **self.inference)
                for c, m in zip(class_logits, mask_logits)]

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None):
        if self.training:
            _require_targets(self, images, targets, "a list of dicts with boxes, labels, masks")
            return self.losses(images, [instance_segments(t, self.num_classes) for t in targets])
        return self.postprocess(self.forward_raw(images), images.shape[-2:])


class MaskFormerPanoptic(MaskClassifier):
    """Panoptic segmentation by mask classification: `num_classes` stuff and thing classes, `is_thing` per class."""

    def __init__(self, num_classes: int, is_thing: list[bool], encoder: str = "", encoder_weights: str = "",
                 in_channels: int = 3, num_queries: int = 100, decoder_channels: int | list | None = None,
                 decoder_layers: int = 3, mask_stride: int = 4, mask_points: int = 512, query_spread: float = 0.1,
                 mask_loss: str = "points", object_threshold: float = 0.8, overlap_threshold: float = 0.8):
        if len(is_thing) != num_classes:
            raise ValueError(f"is_thing has {len(is_thing)} entries for {num_classes} classes")
        super().__init__(num_classes, encoder, encoder_weights, in_channels, num_queries, decoder_channels,
                         decoder_layers, mask_stride, mask_points, query_spread, mask_loss)
        self.is_thing = [bool(t) for t in is_thing]
        self.inference = {"object_threshold": float(object_threshold), "overlap_threshold": float(overlap_threshold)}

    def postprocess(self, raw: tuple, size: tuple) -> list[dict]:
        class_logits, mask_logits = raw
        return [panoptic(c, m, self.mask_stride, tuple(size), self.is_thing, **self.inference)
                for c, m in zip(class_logits, mask_logits)]

    def forward(self, x: torch.Tensor, targets: list[dict] | None = None):
        if self.training:
            _require_targets(self, x, targets, 'a list of dicts with "semantic" and "instances" maps')
            return self.losses(x, [panoptic_segments(t, self.is_thing) for t in targets])
        return self.postprocess(self.forward_raw(x), x.shape[-2:])
