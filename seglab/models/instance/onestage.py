"""A one-stage, anchor-free instance segmentation model (in the YOLOv8-seg / YOLACT way), built for CPU speed.

    encoder (any seglab encoder) -> features at `strides` (chosen by declared reductions)
      -> PAN pyramid (`neck_width` channels) -> per level: class logits, box distances (l, t, r, b),
         `num_protos` mask coefficients; finest level -> `num_protos` prototypes at `proto_stride`
      -> mask of a detection = sigmoid(coefficients x prototypes), upsampled, cropped to its box.

`forward_raw(x)` is the whole network (padding included) and returns plain tensors: it exports to
ONNX with dynamic height and width (`seglab.export.raw_network.export_raw_onnx`). Training targets and losses:
`onestage_loss`; decoding, NMS and mask assembly: `onestage_post`. Design notes: docs/instance_models.md.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from seglab.encoders import build_encoder
from seglab.models.instance.onestage_head import LevelHead, Prototypes, Pyramid, pick_taps
from seglab.models.instance.onestage_loss import MASK_LOSSES, Dense, one_stage_losses
from seglab.models.instance.onestage_post import detections, distances_to_boxes, locations
from seglab.models.padding import pad_to_multiple


class OneStageSeg(nn.Module):
    """One-stage, anchor-free instance segmentation: per-location class + box + mask coefficients, shared prototypes."""

    default_encoder = "efficientnet_lite0"  # encoder="" means this (ImageNet weights: encoder_weights=imagenet)
    raw_outputs = ("logits", "boxes", "coefficients", "protos")  # what forward_raw returns (the ONNX output names)

    def __init__(self, num_classes: int, encoder: str = "", encoder_weights: str = "",
                 in_channels: int = 3, strides: list[int] | None = None, proto_stride: int = 4, neck_width: int = 64,
                 num_protos: int = 32, depthwise: bool = False, score_threshold: float = 0.05,
                 nms_iou: float = 0.6, pre_nms_top_k: int = 1000, max_detections: int = 100, top_k: int = 10,
                 alpha: float = 1.0, beta: float = 6.0, centre_radius: float = 1.0, gamma: float = 2.0,
                 mask_samples: int = 128, mask_loss: str = "points", cls_weight: float = 1.0,
                 box_weight: float = 2.0, mask_weight: float = 2.0):
        super().__init__()
        if mask_loss not in MASK_LOSSES:
            raise ValueError(f"mask_loss={mask_loss!r}: expected one of {', '.join(MASK_LOSSES)}")
        strides = sorted(int(s) for s in (strides or [8, 16, 32]))
        if num_classes < 1:
            raise ValueError(f"num_classes counts the object classes (background excluded): got {num_classes}")
        if len(set(strides)) != len(strides) or any(b != 2 * a for a, b in itertools.pairwise(strides)):
            raise ValueError(f"strides must double from level to level (e.g. [8, 16, 32]), got {strides}")
        self.encoder = build_encoder(encoder or self.default_encoder, in_channels, encoder_weights)
        self.normalization = {k: list(v) for k, v in self.encoder.normalization.items()}
        reductions = list(self.encoder.reductions)
        self.strides, self.proto_stride, self.num_classes = strides, int(proto_stride), num_classes
        self.taps = pick_taps(reductions, strides)
        self.tap_reductions = [reductions[t] for t in self.taps]
        proto_taps = [i for i, r in enumerate(reductions) if r == self.proto_stride]
        self.proto_tap = proto_taps[-1] if proto_taps and self.proto_stride < strides[0] else None
        self.multiple = math.lcm(self.encoder.multiple, strides[-1], self.proto_stride)
        self.pyramid = Pyramid([self.encoder.out_channels[t] for t in self.taps], neck_width, depthwise)
        self.heads = nn.ModuleList(LevelHead(neck_width, num_classes, num_protos, s, depthwise) for s in strides)
        skip = self.encoder.out_channels[self.proto_tap] if self.proto_tap is not None else 0
        self.prototypes = Prototypes(neck_width, num_protos, strides[0], self.proto_stride, skip, depthwise)
        self.inference = {"score_threshold": score_threshold, "nms_iou": nms_iou, "pre_nms_top_k": pre_nms_top_k,
                          "max_detections": max_detections}
        self.loss_options = {"top_k": top_k, "alpha": alpha, "beta": beta, "centre_radius": centre_radius,
                             "gamma": gamma, "mask_samples": mask_samples, "mask_loss": mask_loss,
                             "weights": {"cls": cls_weight, "box": box_weight, "mask": mask_weight}}

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros (the mean colour after normalisation) on the right and bottom up to `multiple`.

        Not edge replication: a replicated border would stretch an object touching it into the padding."""
        return pad_to_multiple(x, self.multiple, mode="constant")

    def dense(self, x: torch.Tensor) -> Dense:
        """Per-location outputs for the padded input (boxes in its pixels, which are the input's)."""
        x = self.pad(x)
        features = self.encoder(x)
        taps = []
        for tap, reduction, stride in zip(self.taps, self.tap_reductions, self.strides):
            f = features[tap]
            if reduction != stride:  # an encoder without this stride: resample its nearest feature
                f = F.interpolate(f, size=(x.shape[-2] // stride, x.shape[-1] // stride), mode="bilinear",
                                  align_corners=False)
            taps.append(f)
        levels = self.pyramid(taps)
        logits, distances, coefficients = [], [], []
        for head, level in zip(self.heads, levels):
            c, d, k = head(level)
            logits.append(c.permute(0, 2, 3, 1).flatten(1, 2))
            distances.append(d.permute(0, 2, 3, 1).flatten(1, 2))
            coefficients.append(k.permute(0, 2, 3, 1).flatten(1, 2))
        protos = self.prototypes(levels[0], features[self.proto_tap] if self.proto_tap is not None else None)
        points, point_strides = locations([level.shape[-2:] for level in levels], self.strides, distances[0])
        boxes = distances_to_boxes(points, torch.cat(distances, 1))
        return Dense(torch.cat(logits, 1), boxes, torch.cat(coefficients, 1), protos, points, point_strides)

    def forward_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network alone: (class logits [N, A, C], boxes [N, A, 4] xyxy input pixels,
        mask coefficients [N, A, k], prototypes [N, k, H' / proto_stride, W' / proto_stride]); H', W' padded."""
        dense = self.dense(x)
        return dense.logits, dense.boxes, dense.coefficients, dense.protos

    def postprocess(self, raw: tuple, size: tuple) -> list[dict]:
        """Raw outputs (from forward_raw, or onnxruntime's as tensors) -> the contract's list of detections."""
        logits, boxes, coefficients, protos = raw
        return detections(logits, boxes, coefficients, protos, self.proto_stride, tuple(size), **self.inference)

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None):
        if self.training:
            if targets is None:
                raise ValueError("OneStageSeg in training mode needs targets (a list of dicts with boxes, "
                                 "labels, masks); call model.eval() to predict")
            if len(targets) != images.shape[0]:
                raise ValueError(f"{images.shape[0]} images but {len(targets)} targets")
            return one_stage_losses(self.dense(images), targets, self.proto_stride, self.loss_options)
        return self.postprocess(self.forward_raw(images), images.shape[-2:])
