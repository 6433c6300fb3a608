"""Automatic class weights from training masks."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch


def median_frequency_weights(masks: Iterable, num_classes: int, ignore_index: int | None = 255) -> list[float]:
    """Median frequency balancing (Eigen & Fergus 2015; used by SegNet on CamVid).

    ``freq[c]`` = pixels of class c / total valid pixels of the images where c appears;
    ``weight[c] = median(freq) / freq[c]``, the median taken over classes that appear.
    Classes that never appear get weight 0.0. ``masks`` yields label maps ``[H,W]`` or
    batches ``[N,H,W]`` (tensors or numpy arrays); each ``[H,W]`` slice is one image.
    """
    class_pixels = torch.zeros(num_classes, dtype=torch.float64)
    image_pixels = torch.zeros(num_classes, dtype=torch.float64)
    for mask in masks:
        m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
        m = m.reshape(-1, *m.shape[-2:]).long().cpu()
        for image in m:
            labels = image.reshape(-1)
            if ignore_index is not None:
                labels = labels[labels != ignore_index]
            if labels.numel() == 0:
                continue
            if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
                raise ValueError(f"mask has labels outside [0, {num_classes}) other than ignore_index={ignore_index}")
            counts = torch.bincount(labels, minlength=num_classes).double()
            class_pixels += counts
            image_pixels += (counts > 0).double() * labels.numel()
    seen = image_pixels > 0
    if not bool(seen.any()):
        raise ValueError("no valid pixels in the masks")
    freq = torch.where(seen, class_pixels / image_pixels.clamp_min(1), torch.zeros_like(class_pixels))
    median = torch.quantile(freq[seen], 0.5)  # mean of the two middle values for an even count
    weights = torch.where(seen, median / freq.clamp_min(1e-300), torch.zeros_like(freq))
    return [float(w) for w in weights]
