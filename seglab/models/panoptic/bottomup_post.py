"""From the bottom-up network's outputs to panoptic segments (Panoptic-DeepLab's grouping), per image:

1. the three maps are upsampled bilinearly from the output stride to the padded input and cut to `size`;
2. semantic = argmax of the logits, with its softmax probability; thing pixels = a thing class won;
3. centres = heatmap peaks: equal to the max over an `nms_kernel` window and above `threshold`, the
   `top_k` highest kept. Bilinear upsampling leaves 2x2 plateaus at a peak: among equal peaks within one
   window only the last (row-major) survives (a max-pool of the peak indices);
4. every thing pixel votes at (pixel + offset) and joins the centre nearest to its vote. With
   `component_grouping` (the boundary-aware option for touching small objects such as nuclei) a pixel may
   only join centres that lie in its own 4-connected thing component (centres on no thing pixel stay open to
   all), and a component without any centre becomes one instance of its own (a missed peak costs a split,
   not the object);
5. class of an instance = majority vote of the semantic argmax over its pixels; score = heatmap value at
   its centre (clipped to [0, 1]) x mean probability of that class over its pixels; instances smaller than
   `min_area` pixels are dropped (void);
6. stuff: one segment per stuff class over the pixels whose argmax is that class, if >= `stuff_min_area`
   pixels (score = mean probability).
Everything is vectorised over pixels and centres (the distance matrix is built in chunks); the Python loop
runs over the images of a batch. Output: the canonical form of seglab/metrics/panoptic.py, plus scores.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

CHUNK = 1 << 22  # elements of one pixels x centres distance block


def upsample(x: torch.Tensor, stride: int, size: tuple[int, int]) -> torch.Tensor:
    """[C, h, w] at `stride` -> [C, H, W] = `size` (bilinear to the padded input, then cut)."""
    x = F.interpolate(x[None].float(), scale_factor=float(stride), mode="bilinear", align_corners=False)[0]
    return x[:, :size[0], :size[1]]


def find_centres(heatmap: torch.Tensor, threshold: float, nms_kernel: int, top_k: int) -> torch.Tensor:
    """Heatmap [H, W] -> centres [K, 2] (row, col), highest first."""
    height, width = heatmap.shape
    pad = nms_kernel // 2
    peaks = (heatmap == F.max_pool2d(heatmap[None, None], nms_kernel, 1, pad)[0, 0]) & (heatmap > threshold)
    index = torch.arange(1, height * width + 1, device=heatmap.device, dtype=torch.float32).view(height, width)
    index = torch.where(peaks, index, torch.zeros_like(index))
    peaks &= index == F.max_pool2d(index[None, None], nms_kernel, 1, pad)[0, 0]  # one of each plateau
    ys, xs = torch.nonzero(peaks, as_tuple=True)
    order = heatmap[ys, xs].argsort(descending=True)[:top_k]
    return torch.stack([ys[order], xs[order]], 1)


def nearest_centre(votes: torch.Tensor, centres: torch.Tensor, allowed=None) -> torch.Tensor:
    """votes [P, 2], centres [K, 2] -> index [P] of the nearest centre; -1 where `allowed(rows)` [p, K] is all False."""
    out = torch.empty(len(votes), dtype=torch.long, device=votes.device)
    step = max(1, CHUNK // max(1, len(centres)))
    for start in range(0, len(votes), step):
        rows = slice(start, start + step)
        distance = torch.cdist(votes[rows], centres)
        if allowed is not None:
            ok = allowed(rows)
            distance = distance.masked_fill(~ok, float("inf"))
            best = distance.argmin(1)
            out[rows] = torch.where(ok.any(1), best, torch.full_like(best, -1))
        else:
            out[rows] = distance.argmin(1)
    return out


def group_image(semantic: torch.Tensor, heatmap: torch.Tensor, offsets: torch.Tensor, thing_lut: torch.Tensor,
                threshold: float, nms_kernel: int, top_k: int, min_area: int, stuff_min_area: int,
                component_grouping: bool) -> dict:
    """One image's full-resolution maps (logits [C, H, W], heatmap [H, W], offsets [2, H, W]) -> panoptic dict."""
    num_classes, height, width = semantic.shape
    device = semantic.device
    prob = semantic.softmax(0)
    confidence, cls = prob.max(0)
    things = thing_lut[cls]
    segment_ids = torch.zeros(height, width, dtype=torch.long, device=device)
    segments = []

    ys, xs = torch.nonzero(things, as_tuple=True)
    centres = find_centres(heatmap, threshold, nms_kernel, top_k)
    centre_value = heatmap[centres[:, 0], centres[:, 1]].clamp(0, 1) if len(centres) else heatmap.new_zeros(0)
    instance = torch.full((len(ys),), -1, dtype=torch.long, device=device)
    if len(ys):
        votes = torch.stack([ys + offsets[0, ys, xs], xs + offsets[1, ys, xs]], 1)
        allowed = None
        if component_grouping:
            labels, count = ndimage.label(things.cpu().numpy())
            labels = torch.from_numpy(labels.astype(np.int64)).to(device)
            pixel_component = labels[ys, xs]
            centre_component = labels[centres[:, 0], centres[:, 1]] if len(centres) else labels.new_zeros(0)

            def allowed(rows):
                return (centre_component[None] == 0) | (centre_component[None] == pixel_component[rows, None])
        if len(centres):
            instance = nearest_centre(votes, centres.float(), allowed)
        if component_grouping:  # components no centre reached: one instance each, scored by their heatmap peak
            orphan = instance < 0
            if orphan.any():
                _, component = torch.unique(pixel_component[orphan], return_inverse=True)
                peak = torch.zeros(int(component.max()) + 1, device=device)
                peak.scatter_reduce_(0, component, heatmap[ys[orphan], xs[orphan]].clamp(0, 1), reduce="amax")
                instance[orphan] = len(centres) + component
                centre_value = torch.cat([centre_value, peak])
        keep = instance >= 0
        ys, xs, instance = ys[keep], xs[keep], instance[keep]

    if len(instance):
        count = int(instance.max()) + 1
        votes = torch.bincount(instance * num_classes + cls[ys, xs], minlength=count * num_classes)
        votes = votes.view(count, num_classes)
        area = votes.sum(1)
        label = votes.argmax(1)
        mean_prob = torch.bincount(instance, weights=prob[label[instance], ys, xs], minlength=count)
        score = centre_value[:count] * mean_prob / area.clamp(min=1)
        kept = area >= max(1, min_area)
        new_id = torch.where(kept, kept.long().cumsum(0), torch.zeros_like(area))  # 1.. for kept, 0 = void
        segment_ids[ys, xs] = new_id[instance]
        segments = [{"id": i + 1, "category_id": c, "score": v, "iscrowd": 0}
                    for i, (c, v) in enumerate(zip(label[kept].tolist(), score[kept].tolist()))]

    stuff = ~things
    stuff_area = torch.bincount(cls[stuff], minlength=num_classes)
    stuff_prob = torch.bincount(cls[stuff], weights=confidence[stuff], minlength=num_classes)
    for c in torch.nonzero((stuff_area >= max(1, stuff_min_area)) & ~thing_lut).flatten().tolist():
        sid = len(segments) + 1
        segment_ids[stuff & (cls == c)] = sid
        segments.append({"id": sid, "category_id": c, "score": float(stuff_prob[c] / stuff_area[c]), "iscrowd": 0})
    return {"segment_ids": segment_ids, "segments": segments}


def panoptic_from_raw(semantic: torch.Tensor, heatmap: torch.Tensor, offsets: torch.Tensor, is_thing: list[bool],
                      size: tuple[int, int], stride: int, threshold: float = 0.1, nms_kernel: int = 7,
                      top_k: int = 400, min_area: int = 8, stuff_min_area: int = 64,
                      component_grouping: bool = True) -> list[dict]:
    """Batched raw outputs at `stride` -> one panoptic dict per image at `size` (the unpadded input's)."""
    if semantic.shape[1] != len(is_thing):
        raise ValueError(f"semantic logits have {semantic.shape[1]} classes but is_thing has {len(is_thing)} flags")
    thing_lut = torch.tensor(is_thing, dtype=torch.bool, device=semantic.device)
    out = []
    with torch.no_grad():
        for n in range(semantic.shape[0]):
            out.append(group_image(upsample(semantic[n], stride, size), upsample(heatmap[n], stride, size)[0],
                                   upsample(offsets[n], stride, size), thing_lut, threshold, nms_kernel, top_k,
                                   min_area, stuff_min_area, component_grouping))
    return out
