"""Check every image of a PanopticSplit: `verify_split(split) -> PanopticReport` (entry point of `seglab verify`).

Every image is decoded and its truth loaded as training loads it. Findings are "file: reason" strings sorted
into problems (exit 1) and warnings by seglab.data.panoptic.spec.SEVERITY: ids in a PNG missing from the
JSON, segments of categories the JSON does not declare, thing pixels without an instance, unreadable or
mis-sized files (problems); JSON segments without a pixel, overlapping instances of instance layouts,
images without a segment (warnings). Listing problems come in through `split.skipped`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from seglab.data.dataset import load_image
from seglab.data.io import DataError, image_size
from seglab.data.panoptic.spec import SEVERITY, PanopticItem, PanopticSplit


@dataclass
class PanopticReport:
    split: PanopticSplit
    images: int = 0
    things: int = 0  # thing segments (crowd included)
    stuff: int = 0
    crowd: int = 0
    per_class: Counter = field(default_factory=Counter)
    image_sizes: Counter = field(default_factory=Counter)
    findings: list[tuple[str, str]] = field(default_factory=list)

    def add(self, kind: str, message: str) -> None:
        self.findings.append((kind, message))

    @property
    def problems(self) -> list[str]:
        return [m for kind, m in self.findings if SEVERITY[kind] == "problem"]

    @property
    def warnings(self) -> list[str]:
        return [m for kind, m in self.findings if SEVERITY[kind] == "warning"]

    def summary(self) -> list[str]:
        split = self.split
        kinds = ", ".join(f"{name} ({'thing' if t else 'stuff'}) {self.per_class[i]}"
                          for i, (name, t) in enumerate(zip(split.classes, split.is_thing)))
        out = [f"split {split.name} ({split.format}): {len(split.items)} images, {self.images} ok, "
               f"{self.things + self.stuff} segments ({self.things} things, {self.crowd} of them crowd; "
               f"{self.stuff} stuff), {len(self.problems)} problem(s), {len(self.warnings)} warning(s)",
               f"  segments per class: {kinds}"]
        if self.image_sizes:
            common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.image_sizes.most_common(5))
            out.append(f"  image sizes: {common}{', ...' if len(self.image_sizes) > 5 else ''}")
        return out

    def lines(self, max_listed: int = 100) -> list[str]:
        out = self.summary()
        for title, messages in (("problem", self.problems), ("warning", self.warnings)):
            out += [f"  {title}: {m}" for m in messages[:max_listed]]
            if len(messages) > max_listed:
                out.append(f"  ... {len(messages) - max_listed} more {title}s")
        return out


def check_item(item: PanopticItem, split: PanopticSplit, report: PanopticReport) -> None:
    try:
        load_image(item.image, None)  # a full decode: truncated files fail here
        truth = item.load()
    except DataError as e:
        report.add("load", str(e))
        return
    report.images += 1
    report.image_sizes[image_size(item.image)] += 1
    for kind, message in truth.problems:
        report.add(kind, message)
    if not truth.segments:
        report.add("no_segments", f"{item.annotation_file or item.image}: image {item.name} has no segment")
    for segment in truth.segments:
        category = segment["category_id"]
        report.per_class[category] += 1
        if split.is_thing[category]:
            report.things += 1
            report.crowd += int(bool(segment.get("iscrowd", 0)))
        else:
            report.stuff += 1


def verify_split(split: PanopticSplit) -> PanopticReport:
    report = PanopticReport(split)
    for path, reason in split.skipped:
        report.add("listing", f"{path}: {reason}")
    for item in split.items:
        check_item(item, split, report)
    return report
