"""The instance layouts of seglab/data/instance/ (DSB2018, Penn-Fudan, COCO instances, YOLO, id folders) read as
panoptic data: class 0 "background" is the one stuff class, the instance classes are the things (class k + 1).

Every pixel outside the instances is the background segment; crowd instances stay crowd segments; where two
instances overlap the first keeps the pixel (an id map holds one segment per pixel; verify counts them).
Splits are the instance format's (the seeded rule for layouts without splits).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from seglab.data.instance import INSTANCE_FORMATS
from seglab.data.instance.spec import InstanceItem
from seglab.data.io import DataError
from seglab.data.panoptic.canonical import paint_instances
from seglab.data.panoptic.spec import PanopticItem, PanopticSplit, PanopticTruth

BACKGROUND = "background"


def instance_truth(item: InstanceItem) -> PanopticTruth:
    instances = item.load()
    segment_ids, segments, shared = paint_instances(instances.masks, instances.labels, instances.iscrowd)
    problems = [("overlap", f"{item.annotation_file or item.image}: {shared} pixel(s) claimed by two instances "
                            "(the first keeps them)")] if shared else []
    return PanopticTruth(segment_ids, segments, problems)


def reader(instance_format: str):
    """(matches, load_split, splits) of the panoptic view of one instance format."""
    fmt = INSTANCE_FORMATS[instance_format]

    def load_split(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
                   **_) -> PanopticSplit:
        split_ = fmt.load_split(Path(root), split, seed=seed, val_fraction=val_fraction, skip_bad=skip_bad)
        if BACKGROUND in split_.classes:
            raise DataError(f"{root}: has a class named '{BACKGROUND}', the stuff class seglab adds to instance data")
        thing_ids = list(split_.category_ids or range(1, split_.num_classes + 1))
        items = [PanopticItem(it.image, it.name, partial(instance_truth, it), it.image_id, it.annotation_file)
                 for it in split_.items]
        return PanopticSplit(split_.name, split_.root, [BACKGROUND, *split_.classes],
                             [False] + [True] * split_.num_classes, items, [0, *thing_ids], list(split_.skipped),
                             f"{instance_format} (instances on background)")

    return fmt.matches, load_split, fmt.splits
