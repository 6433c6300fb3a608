"""Mask R-CNN (He et al. 2017) on any seglab encoder, through torchvision's implementation.

An encoder with a feature pyramid (fpn_backbone.EncoderFPN) feeds a region proposal network (anchors
of settable sizes on every pyramid level), MultiScaleRoIAlign samples each proposal without
quantisation, and three heads give per RoI a class, a refined box and a 28x28 binary mask per class.
Training loss = RPN objectness + RPN box + classification + box + mask (torchvision's five names).

What seglab sets on torchvision's GeneralizedRCNNTransform:
- normalisation: seglab feeds tensors already normalised with `self.normalization` (the encoder's),
  so the transform's mean is 0 and std 1 (it changes nothing);
- size: with `min_size=None` (the default) no resize at all: seglab's own resizing (`imgsz`) governs
  and outputs come at the input size. `min_size` / `max_size` turn torchvision's resize back on
  (shorter side to `min_size`, longer side at most `max_size`; a list of `min_size`s draws one per
  image in training). Boxes and masks always come back at the input size;
- padding: to the encoder's `multiple` (size_divisible), bottom and right, with 0 (the mean colour).

`freeze_encoder_norm=True` freezes the encoder's BatchNorm (statistics and affine), as torchvision
does for pretrained detection backbones: use it with ImageNet weights and batches of a few images.
Encoders are chosen by their declared reductions (fpn_backbone.py): single-scale ones (ViT) fail.

Mixed precision: under bf16 / fp16 autocast the encoder, FPN and the heads' convolutions and linears run in
the low precision, but the box arithmetic does not: the FPN's features, the RPN head's and the predictors'
outputs are cast to float32 (forward hooks, `FLOAT32_OUTPUTS`), so anchors, proposals, box encodings and the
losses are float32. torchvision decodes boxes in the dtype of the deltas; in bf16 (8 mantissa bits) the
coordinates of a 512-px image sit on a 2-4 px grid, and with 8-px anchors the DSB2018 recipe's loss became
NaN within 35 steps.

Every constructor argument is a plain JSON value (lists for tuples), so a checkpoint rebuilds the
model with `MaskRCNN(**args)` and `load_state_dict`. `NUCLEI` holds the settings for many small
objects (nuclei are 5-40 px, hundreds per image): `MaskRCNN(num_classes=1, **NUCLEI)`.
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_map
from torchvision.models.detection import MaskRCNN as TorchvisionMaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from seglab.encoders import build_encoder
from seglab.models.instance.fpn_backbone import PYRAMID_REDUCTIONS, EncoderFPN

# one anchor size per pyramid level: the four FPN levels (x/4 .. x/32) and the max-pool level (x/64)
NATURAL_ANCHORS = [[32], [64], [128], [256], [512]]  # torchvision's, for COCO-like photos
SMALL_OBJECT_ANCHORS = [[8], [16], [32], [64], [128]]  # objects of ~5-100 px, e.g. nuclei
NUCLEI = {
    "anchor_sizes": SMALL_OBJECT_ANCHORS,
    "max_detections": 500,  # DSB 2018 images hold up to ~400 nuclei
    "rpn_post_nms_top_n_train": 3000,
    "rpn_post_nms_top_n_test": 2000,  # proposals kept for the heads: several per object
    "rpn_batch_size_per_image": 512,  # anchors sampled for the RPN loss, half of them positive at most
    "box_batch_size_per_image": 1024,  # RoIs sampled for the heads' losses, a quarter positive at most
}
NO_SIZE_CAP = 1 << 30
# the submodules whose outputs carry coordinates or go into box arithmetic: cast to float32 under autocast
FLOAT32_OUTPUTS = ("backbone", "rpn.head", "roi_heads.box_predictor", "roi_heads.mask_predictor")


def float32_output(module, inputs, output):
    """Forward hook: every floating-point tensor of `output` (tensor, list, tuple, dict) as float32."""
    return tree_map(lambda t: t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t, output)


class KeepSizeTransform(GeneralizedRCNNTransform):
    """torchvision's transform whose resize is skipped when `min_size` is None."""

    def __init__(self, min_size: int | list[int] | None, max_size: int | None, channels: int, size_divisible: int):
        super().__init__(tuple(min_size) if isinstance(min_size, (list, tuple)) else (min_size or 0),
                         max_size or NO_SIZE_CAP, [0.0] * channels, [1.0] * channels, size_divisible)
        self.keep_size = min_size is None

    def resize(self, image: torch.Tensor, target: dict | None = None):
        if self.keep_size:
            return image, target
        return super().resize(image, target)


def per_level(values, levels: int, name: str) -> tuple[tuple, ...]:
    """[8, 16, ...] or [[8], [16, 20], ...] -> one tuple per level; the count must match the levels."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{name}: expected a list with one entry per pyramid level ({levels}), got {values!r}")
    rows = tuple(tuple(v) if isinstance(v, (list, tuple)) else (v,) for v in values)
    if len(rows) != levels:
        raise ValueError(f"{name}={[list(r) for r in rows]}: {len(rows)} levels given, the feature pyramid has "
                         f"{levels} (one per pyramid reduction plus the max-pool level)")
    return rows


class MaskRCNN(TorchvisionMaskRCNN):
    """torchvision's Mask R-CNN on a seglab encoder + FPN; labels are 1-based (0 = background)."""

    default_encoder = "efficientnet_lite0"  # encoder="" means this (ImageNet weights: encoder_weights=imagenet)

    def __init__(self, num_classes: int, encoder: str = "", encoder_weights: str = "",
                 in_channels: int = 3, freeze_encoder_norm: bool = False,
                 fpn_channels: int = 256, box_head_channels: int = 1024, mask_head_channels: int = 256,
                 pyramid_reductions: list[int] = PYRAMID_REDUCTIONS, anchor_sizes: list = NATURAL_ANCHORS,
                 aspect_ratios: list[float] = (0.5, 1.0, 2.0),
                 min_size: int | list[int] | None = None, max_size: int | None = None,
                 score_threshold: float = 0.05, max_detections: int = 100, nms_threshold: float = 0.5,
                 rpn_pre_nms_top_n_train: int = 2000, rpn_pre_nms_top_n_test: int = 1000,
                 rpn_post_nms_top_n_train: int = 2000, rpn_post_nms_top_n_test: int = 1000,
                 rpn_batch_size_per_image: int = 256, box_batch_size_per_image: int = 512):
        if num_classes < 1:
            raise ValueError(f"num_classes={num_classes}: Mask R-CNN needs at least one thing class "
                             f"(background is added by the model)")
        if min_size is not None and min(min_size if isinstance(min_size, (list, tuple)) else [min_size]) < 1:
            raise ValueError(f"min_size={min_size}: give a positive size (or a list of them), or None to keep the "
                             f"input size")
        enc = build_encoder(encoder or self.default_encoder, in_channels, encoder_weights)
        backbone = EncoderFPN(enc, fpn_channels, list(pyramid_reductions), freeze_encoder_norm, f"encoder {encoder}")
        levels = len(backbone.level_names) + 1  # + "pool"
        sizes = per_level(anchor_sizes, levels, "anchor_sizes")
        ratios = tuple(float(r) for r in aspect_ratios)
        super().__init__(
            backbone, num_classes=None,  # the predictors below are given: they hold background + things
            rpn_anchor_generator=AnchorGenerator(sizes, (ratios,) * levels),
            box_roi_pool=MultiScaleRoIAlign(backbone.level_names, output_size=7, sampling_ratio=2),
            mask_roi_pool=MultiScaleRoIAlign(backbone.level_names, output_size=14, sampling_ratio=2),
            box_head=TwoMLPHead(fpn_channels * 7 * 7, box_head_channels),
            box_predictor=FastRCNNPredictor(box_head_channels, num_classes + 1),
            mask_head=MaskRCNNHeads(fpn_channels, [mask_head_channels] * 4, dilation=1),
            mask_predictor=MaskRCNNPredictor(mask_head_channels, mask_head_channels, num_classes + 1),
            image_mean=[0.0] * in_channels, image_std=[1.0] * in_channels,
            box_score_thresh=score_threshold, box_detections_per_img=max_detections, box_nms_thresh=nms_threshold,
            rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
            rpn_post_nms_top_n_train=rpn_post_nms_top_n_train, rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
            rpn_batch_size_per_image=rpn_batch_size_per_image, box_batch_size_per_image=box_batch_size_per_image)
        self.transform = KeepSizeTransform(min_size, max_size, in_channels, enc.multiple)
        self.normalization = {k: list(v) for k, v in enc.normalization.items()}
        for name in FLOAT32_OUTPUTS:
            self.get_submodule(name).register_forward_hook(float32_output)

    @property
    def encoder(self):
        return self.backbone.encoder

    @property
    def multiple(self) -> int:
        return self.backbone.encoder.multiple
