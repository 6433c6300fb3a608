"""`seglab verify task=panoptic data=...` (or a panoptic layout): every image and segment of every split; problems
named by file (seglab/data/panoptic/verify.py has the checks). Exit code 1 on problems."""

from __future__ import annotations

from seglab.config import Config
from seglab.data.panoptic import PANOPTIC_FORMATS, panoptic_format, verify_split
from seglab.tasks.verifying import verify_splits


def verify(cfg: Config) -> int:
    return verify_splits(cfg, PANOPTIC_FORMATS, panoptic_format, verify_split, "panoptic", split_header=False)
