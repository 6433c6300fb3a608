"""`seglab verify task=panoptic data=...` (or a panoptic layout): every image and segment of every split; problems
named by file (seglab/data/panoptic/verify.py has the checks). Exit code 1 on problems."""

from __future__ import annotations

import time

from seglab.config import Config
from seglab.data import resolve_root
from seglab.data.panoptic import (
    PANOPTIC_FORMATS,
    DataError,
    panoptic_format,
    verify_split,
)

MAX_LISTED = 100


def verify(cfg: Config) -> int:
    start = time.perf_counter()
    root = resolve_root(cfg.data)
    fmt = panoptic_format(root, cfg.dataset if cfg.dataset in PANOPTIC_FORMATS else "auto")
    print(f"seglab verify: {root} ({fmt}, panoptic segmentation)")
    problems = 0
    for name in PANOPTIC_FORMATS[fmt].splits(root):
        try:
            split = PANOPTIC_FORMATS[fmt].load_split(root, name, seed=cfg.seed, val_fraction=cfg.val_fraction,
                                                     skip_bad=True)
        except (DataError, ValueError) as e:
            print(f"split {name}: cannot be listed: {e}")
            problems += 1
            continue
        report = verify_split(split)
        for line in report.lines(MAX_LISTED):
            print(line)
        problems += len(report.problems)
    print(f"{'OK' if not problems else f'{problems} problem(s)'} in {time.perf_counter() - start:.1f} s")
    return 1 if problems else 0
