"""A training set needs two classes that occur: with one, a model learns one constant answer and scores "well".

`require_two_classes(train_set)` reads the split's masks until two classes have been seen (usually
the first mask; nothing for a folder whose classes were read off its masks, their values are cached),
and otherwise raises a DataError that names the class that occurs, the ones that never do, and what to do.
`one_class_reason` gives the same reason from pixel counts already made (`seglab verify`).
"""

from __future__ import annotations

import numpy as np

from seglab.data.io import DataError, mask_values
from seglab.data.spec import ClassTable, SplitSpec


def present_values(spec: SplitSpec, enough: int = 2) -> np.ndarray:
    """bool[256] over class ids and the ignore index: which occur in the split's masks.

    Stops as soon as `enough` distinct classes have been seen."""
    present = np.zeros(256, dtype=bool)
    num_classes = spec.classes.num_classes
    for image, mask in spec.pairs:
        values = np.unique(spec.read_mask(image, mask)) if spec.read_mask else mask_values(mask, spec.mask_colors)
        labels = spec.lut[values]
        present[labels[labels >= 0]] = True  # invalid values are reported when the pair is loaded
        if present[:num_classes].sum() >= enough:
            break
    return present


def one_class_reason(classes: ClassTable, present: np.ndarray, split: str, masks: int) -> str | None:
    """Why a split in which fewer than two classes occur cannot train a model (None when two or more do)."""
    seen = [i for i in range(classes.num_classes) if present[i]]
    if len(seen) >= 2:
        return None
    never = [name for i, name in enumerate(classes.names) if not present[i]]
    ignore = classes.ignore_index
    if seen:
        what = f"only class '{classes.names[seen[0]]}' (id {seen[0]}) occurs in the {masks} mask(s) of split '{split}'"
    else:
        what = f"no class occurs in the {masks} mask(s) of split '{split}'"
    if never:
        what += f"; {', '.join(repr(n) for n in never)} never occur{'s' if len(never) == 1 else ''}"
    else:
        what += " and no other class is declared"
    if 0 <= ignore < present.size and present[ignore]:
        held = f"masks hold only class {seen[0]} and" if seen else "every pixel holds"
        hint = (f"{held} the ignore value {ignore}; binary masks stored as 0/{ignore}? Store them as 0/1, or (folder "
                f"dataset) leave \"classes\" and \"ignore_index\" out of dataset.json so 0/255 masks are read as "
                f"background / foreground")
    else:
        hint = ("check that the masks mark the objects (seglab verify data=...), or declare what the mask values "
                "mean in dataset.json ({\"classes\": [\"background\", \"object\"], \"ignore_index\": 255})")
    return f"{what}, so a model would learn to predict one class everywhere; {hint}"


def require_two_classes(source) -> None:
    """Raise a DataError when fewer than two classes occur in a training set (a SegmentationDataset or a SplitSpec)."""
    spec: SplitSpec = getattr(source, "spec", source)
    present = present_values(spec)
    reason = one_class_reason(spec.classes, present, spec.name, len(spec.pairs))
    if reason:
        raise DataError(f"{spec.root}: {reason}")
