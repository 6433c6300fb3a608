"""The panoptic split of a config, its class table, and the check that a model's classes fit the data."""

from __future__ import annotations

from seglab.config import Config
from seglab.data import DataError, resolve_root
from seglab.data.panoptic import PANOPTIC_FORMATS, PanopticSplit, open_panoptic_split
from seglab.data.spec import ClassTable, default_colors


def panoptic_split(cfg: Config, split: str, skip_bad: bool) -> PanopticSplit:
    """The split of cfg.data (format detected; seed and val_fraction fix the random split of unsplit layouts)."""
    fmt = cfg.dataset if cfg.dataset in PANOPTIC_FORMATS else "auto"
    return open_panoptic_split(resolve_root(cfg.data), split, seed=cfg.seed, val_fraction=cfg.val_fraction,
                               skip_bad=skip_bad, fmt=fmt)


def class_table(split: PanopticSplit) -> ClassTable:
    """The split's classes with its own colours, else the palette without its black entry."""
    return ClassTable(list(split.classes), list(split.colors or default_colors(split.num_classes + 1)[1:]))


def check_classes(split: PanopticSplit, predictor) -> None:
    if split.classes != predictor.classes.names or list(split.is_thing) != list(predictor.is_thing):
        raise DataError(f"{split.root}: classes {split.classes} (things {split.is_thing}) differ from the model's "
                        f"{predictor.classes.names} (things {predictor.is_thing})")
