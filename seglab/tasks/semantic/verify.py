"""`seglab verify data=...`: check every pair of every split before training.

Each pair is decoded in full (image and mask), its labels mapped to classes and its sizes compared,
exactly as training would. The report gives per split the pair count, image sizes and each class's
share of the mask pixels, then every problem as "file: reason". Exit code 1 when there are problems,
0 otherwise (warnings, such as a class that never occurs or a split with only one class, do not fail).
Notes the dataset format gives (how 0/255 masks were read, for instance) are printed under the split.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np

from seglab.config import Config, warn_unused_format_keys
from seglab.data import FORMATS, DataError, SplitSpec, dataset_format, load_mask
from seglab.data.class_presence import one_class_reason
from seglab.data.io import read_image

MAX_LISTED = 100


class SplitReport:
    def __init__(self, spec: SplitSpec):
        self.spec = spec
        self.sizes: Counter = Counter()
        self.pixels = np.zeros(256, dtype=np.int64)
        self.ok = 0

    def add(self, size: tuple[int, int], labels: np.ndarray) -> None:
        self.sizes[size] += 1
        self.pixels += np.bincount(labels.ravel(), minlength=256)
        self.ok += 1

    def lines(self) -> list[str]:
        classes = self.spec.classes
        out = []
        if self.sizes:
            widths = [w for (w, _), n in self.sizes.items() for _ in range(n)]
            heights = [h for (_, h), n in self.sizes.items() for _ in range(n)]
            common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.sizes.most_common(5))
            more = f", ... {len(self.sizes) - 5} more sizes" if len(self.sizes) > 5 else ""
            out.append(f"  image sizes: {common}{more}")
            out.append(f"  width {min(widths)}-{max(widths)} (median {int(np.median(widths))}), "
                       f"height {min(heights)}-{max(heights)} (median {int(np.median(heights))})")
        total = int(self.pixels.sum())
        if total:
            shares = [f"{name} {100 * self.pixels[i] / total:.1f}%" for i, name in enumerate(classes.names)]
            shares.append(f"ignored ({classes.ignore_index}) {100 * self.pixels[classes.ignore_index] / total:.1f}%")
            out.append("  class pixel share: " + ", ".join(shares))
        return out

    def warnings(self) -> list[str]:
        if not self.ok:
            return []
        names = self.spec.classes.names
        absent = [name for i, name in enumerate(names) if self.pixels[i] == 0]
        out = []
        if absent:
            out.append(f"split '{self.spec.name}': class(es) {absent} never occur")
        reason = one_class_reason(self.spec.classes, self.pixels > 0, self.spec.name, self.ok)
        if reason:  # `seglab train` stops on such a training set with the same reason
            out.append(reason)
        return out


def check_split(spec: SplitSpec, problems: list[tuple[str, Path, str]]) -> SplitReport:
    report = SplitReport(spec)
    for index, (image_path, mask_path) in enumerate(spec.pairs):
        try:
            image = read_image(image_path)  # a full decode: truncated files fail here
            labels = load_mask(spec, index)  # values mapped to classes, size compared with the image's
        except DataError as e:
            message = str(e)
            path = mask_path if message.startswith(f"{mask_path}: ") else image_path
            problems.append((spec.name, path, message.removeprefix(f"{path}: ")))
            continue
        report.add(image.size, labels)
    return report


def verify(cfg: Config) -> int:
    """Check the dataset `cfg.data`; print the report; 1 if any pair has a problem, else 0."""
    start = time.perf_counter()
    root, fmt = dataset_format(cfg)
    warn_unused_format_keys(cfg, fmt)
    problems: list[tuple[str, Path, str]] = []
    warnings: list[str] = []
    owners: dict[Path, str] = {}
    notes: set[str] = set()
    print(f"seglab verify: {root} ({fmt})")
    for split in FORMATS[fmt].splits(root):
        try:
            spec = FORMATS[fmt].load_split(root, split, classes=cfg.classes, seed=cfg.seed,
                                           val_fraction=cfg.val_fraction, skip_bad=True, voc_aug=cfg.voc_aug)
        except (DataError, ValueError) as e:
            problems.append((split, Path(root), str(e)))
            print(f"split {split}: cannot be listed: {e}")
            continue
        problems += [(split, path, reason) for path, reason in spec.skipped]
        before = len(problems)
        report = check_split(spec, problems)
        bad = len(problems) - before + len(spec.skipped)
        classes = spec.classes
        print(f"split {split}: {len(spec.pairs)} pairs, {report.ok} ok, {bad} problem(s); "
              f"{classes.num_classes} classes, ignore index {classes.ignore_index}")
        for note in spec.notes:  # how the masks were read (e.g. 0/255 as background / foreground), once
            if note not in notes:
                print(f"  note: {note}")
                notes.add(note)
        for line in report.lines():
            print(line)
        warnings += report.warnings()
        for image, _ in spec.pairs:
            if image in owners and owners[image] != split:
                warnings.append(f"{image}: in split '{owners[image]}' and in split '{split}'")
            owners.setdefault(image, split)
        if not spec.pairs:
            problems.append((split, Path(root), f"split '{split}' is empty"))
    problems = list({(path, reason): (split, path, reason) for split, path, reason in reversed(problems)}.values())[::-1]
    for warning in warnings[:MAX_LISTED]:
        print(f"warning: {warning}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for split, path, reason in problems[:MAX_LISTED]:
            print(f"  [{split}] {path}: {reason}")
        if len(problems) > MAX_LISTED:
            print(f"  ... and {len(problems) - MAX_LISTED} more")
        print("FAILED: fix or remove these files, or train with skip_bad=true to leave them out "
              f"({time.perf_counter() - start:.1f} s)")
        return 1
    print(f"OK: every pair of every split is usable ({time.perf_counter() - start:.1f} s)")
    return 0
