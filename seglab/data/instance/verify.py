"""Check every image and instance of an InstanceSplit: `verify_split(split) -> InstanceReport`.

Entry point for `seglab verify` (instance datasets):

    split = open_instance_split(root, name, skip_bad=True)   # listing problems land in split.skipped
    report = verify_split(split)
    print("\\n".join(report.lines()))                          # counts, then problems, then warnings
    exit_code = 1 if report.problems else 0

Every image is decoded and every instance loaded as training would. Findings are
"file: annotation: reason" strings (the annotation is "annotation 17" for COCO, "line 4" for YOLO,
"instance id 3" for id PNGs, "mask <file>" for DSB2018), sorted into problems (exit 1) and warnings
by the declared table SEVERITY:
  load         the image or its annotations cannot be read (bad JSON, polygon with < 3 points, RLE
               size mismatch, odd label line, class outside data.yaml, mask size != image size, ...)
  empty        a mask without a pixel
  bbox         a COCO "bbox" field reaching outside the image
  tiny         a mask under MIN_PIXELS pixels (too small to learn or to score; DSB2018's smallest is 21 px)
  overlap      two instances claiming the same pixels (warning: COCO annotates occlusion with
               overlapping polygons; id PNGs cannot overlap; DSB2018 has 4 shared pixels in 2 images)
  no_objects   an image without instances (warning: background images are legitimate)
Unknown category ids, annotations of unknown images and bad structure found while listing come in
through `split.skipped` (list with skip_bad=True) and are problems.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from seglab.data.dataset import load_image
from seglab.data.instance.spec import InstanceItem, Instances, InstanceSplit
from seglab.data.io import DataError, image_size

MIN_PIXELS = 4
MAX_OVERLAPS_LISTED = 5  # per image
BBOX_TOLERANCE = 1.0  # pixels: exporters round boxes outward
SEVERITY = {"load": "problem", "listing": "problem", "empty": "problem", "bbox": "problem",
            "tiny": "problem", "overlap": "warning", "no_objects": "warning"}


@dataclass
class InstanceReport:
    split: InstanceSplit
    images: int = 0  # images read without a problem
    instances: int = 0
    crowd: int = 0
    per_class: Counter = field(default_factory=Counter)
    areas: list[int] = field(default_factory=list)
    image_sizes: Counter = field(default_factory=Counter)  # (width, height) -> images
    without_objects: int = 0
    findings: list[tuple[str, str]] = field(default_factory=list)  # (kind of SEVERITY, "file: ...: reason")

    def add(self, kind: str, message: str) -> None:
        self.findings.append((kind, message))

    @property
    def problems(self) -> list[str]:
        return [message for kind, message in self.findings if SEVERITY[kind] == "problem"]

    @property
    def warnings(self) -> list[str]:
        return [message for kind, message in self.findings if SEVERITY[kind] == "warning"]

    def summary(self) -> list[str]:
        split = self.split
        out = [f"split {split.name} ({split.format}): {len(split.items)} images, {self.images} ok, "
               f"{self.instances} instances ({self.crowd} crowd), {len(self.problems)} problem(s), "
               f"{len(self.warnings)} warning(s)"]
        counts = ", ".join(f"{name} {self.per_class[i]}" for i, name in enumerate(split.classes))
        out.append(f"  instances per class: {counts}")
        if self.areas:
            low, median, high = np.percentile(self.areas, [0, 50, 100])
            out.append(f"  instance area (px): min {int(low)}, median {int(median)}, max {int(high)}")
        if self.image_sizes:
            common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.image_sizes.most_common(5))
            out.append(f"  image sizes: {common}{', ...' if len(self.image_sizes) > 5 else ''}")
        if self.without_objects:
            out.append(f"  images without objects: {self.without_objects}")
        return out

    def lines(self, max_listed: int = 100) -> list[str]:
        out = self.summary()
        for title, messages in (("problem", self.problems), ("warning", self.warnings)):
            out += [f"  {title}: {m}" for m in messages[:max_listed]]
            if len(messages) > max_listed:
                out.append(f"  ... {len(messages) - max_listed} more {title}s")
        return out


def _where(item: InstanceItem) -> str:
    return str(item.annotation_file or item.image)


def _label(item: InstanceItem, instances: Instances, i: int) -> str:
    return f"{_where(item)}: {instances.source(i)} (image {item.name})"


def check_overlaps(item: InstanceItem, instances: Instances, report: InstanceReport) -> None:
    counts = instances.masks.sum(axis=0, dtype=np.int32)
    shared = counts > 1
    if not shared.any():
        return
    columns = instances.masks[:, shared].astype(np.int32)  # [N, shared pixels]
    pairs = np.triu(columns @ columns.T, k=1)
    found = np.argwhere(pairs > 0)
    for a, b in found[:MAX_OVERLAPS_LISTED]:
        report.add("overlap", f"{_label(item, instances, a)}: overlaps {instances.source(b)} by {pairs[a, b]} px")
    if len(found) > MAX_OVERLAPS_LISTED:
        report.add("overlap", f"{_where(item)}: ... {len(found) - MAX_OVERLAPS_LISTED} more overlapping pairs "
                              f"(image {item.name})")


def check_given_boxes(item: InstanceItem, instances: Instances, report: InstanceReport) -> None:
    height, width = instances.size
    for i, (x1, y1, x2, y2) in enumerate(item.boxes_given):
        if np.isnan(x1):
            continue
        if x1 < -BBOX_TOLERANCE or y1 < -BBOX_TOLERANCE or x2 > width + BBOX_TOLERANCE or y2 > height + BBOX_TOLERANCE:
            report.add("bbox", f"{_label(item, instances, i)}: bbox [{x1:g}, {y1:g}, {x2 - x1:g}, {y2 - y1:g}] "
                               f"(x, y, w, h) reaches outside the {width}x{height} image")
        elif x2 < x1 or y2 < y1:
            report.add("bbox", f"{_label(item, instances, i)}: bbox has a negative width or height")


def check_item(item: InstanceItem, split: InstanceSplit, report: InstanceReport) -> None:
    try:
        load_image(item.image, None)  # a full decode: truncated files fail here
        instances = item.load()
    except DataError as e:
        report.add("load", str(e))
        return
    report.images += 1
    report.image_sizes[image_size(item.image)] += 1
    if not len(instances):
        report.without_objects += 1
        report.add("no_objects", f"{_where(item)}: image {item.name} has no objects")
        return
    areas = instances.areas
    report.instances += len(instances)
    report.crowd += int(instances.iscrowd.sum())
    report.per_class.update(instances.labels.tolist())
    report.areas += areas[areas > 0].tolist()
    for i in np.flatnonzero(areas == 0):
        report.add("empty", f"{_label(item, instances, i)}: empty mask (no pixel set)")
    for i in np.flatnonzero((areas > 0) & (areas < MIN_PIXELS)):
        report.add("tiny", f"{_label(item, instances, i)}: tiny mask ({areas[i]} px, under {MIN_PIXELS})")
    check_overlaps(item, instances, report)
    if item.boxes_given is not None and len(item.boxes_given) == len(instances):
        check_given_boxes(item, instances, report)


def verify_split(split: InstanceSplit) -> InstanceReport:
    """Decode every image and its instances; count them and collect problems and warnings."""
    report = InstanceReport(split)
    for path, reason in split.skipped:
        report.add("listing", f"{path}: {reason}")
    for item in split.items:
        check_item(item, split, report)
    return report
