"""Text table of per-class results for printing (used by ``seglab val``)."""
from __future__ import annotations

from typing import Sequence

COLUMNS = (("IoU", "iou_per_class", "miou"), ("Dice", "dice_per_class", "mean_dice"),
           ("Acc", "recall_per_class", "mean_class_accuracy"), ("BF", "bf_per_class", "bf"),
           ("Share", "pixel_share", None))


def _cell(value) -> str:
    return "-" if value is None else f"{100.0 * value:.2f}"


def format_class_table(metrics: dict, class_names: Sequence[str]) -> str:
    """Per-class table: class, IoU, Dice, accuracy (recall), BF, pixel share, in percent.

    ``metrics`` is ``SegmentationMetrics.compute()`` (the "dataset" section is shown, BF from
    the "boundary" section when present) or a flat ``ConfusionMatrix.compute()`` dict (which
    may also carry "bf_per_class" / "bf"). Undefined values print as "-"; the last row holds
    the means (over classes where defined).
    """
    flat = dict(metrics.get("dataset", metrics))
    if "boundary" in metrics:
        flat.update(metrics["boundary"])
    n = len(flat["iou_per_class"])
    if len(class_names) != n:
        raise ValueError(f"got {len(class_names)} class names for {n} classes")
    name_width = max([len("class"), len("mean")] + [len(str(c)) for c in class_names])
    header = "class".ljust(name_width) + "".join(f"{title:>8}" for title, _, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for i, name in enumerate(class_names):
        cells = [_cell(flat[key][i]) if key in flat else "-" for _, key, _ in COLUMNS]
        lines.append(str(name).ljust(name_width) + "".join(f"{c:>8}" for c in cells))
    lines.append("-" * len(header))
    means = [_cell(flat.get(mean_key)) if mean_key else "" for _, _, mean_key in COLUMNS]
    lines.append("mean".ljust(name_width) + "".join(f"{c:>8}" for c in means))
    return "\n".join(lines)
