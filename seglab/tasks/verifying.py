"""`seglab verify` for the tasks whose data layouts list splits themselves (instance, panoptic): every split of
the folder loaded with skip_bad, its report printed, exit code 1 on problems. The checks are the data layer's."""

from __future__ import annotations

import time
from typing import Callable, Mapping

from seglab.config import Config
from seglab.data import DataError, resolve_root

MAX_LISTED = 100


def verify_splits(cfg: Config, formats: Mapping, pick_format: Callable, verify_split: Callable, task: str,
                  split_header: bool) -> int:
    """`pick_format(root, name)` names the layout; `split_header`: print "split NAME:" above a report whose
    lines do not name their split."""
    start = time.perf_counter()
    root = resolve_root(cfg.data)
    fmt = pick_format(root, cfg.dataset if cfg.dataset in formats else "auto")
    print(f"seglab verify: {root} ({fmt}, {task} segmentation)")
    problems = 0
    for name in formats[fmt].splits(root):
        try:
            split = formats[fmt].load_split(root, name, seed=cfg.seed, val_fraction=cfg.val_fraction, skip_bad=True)
        except (DataError, ValueError) as e:
            print(f"split {name}: cannot be listed: {e}")
            problems += 1
            continue
        report = verify_split(split)
        if split_header:
            print(f"split {name}:")
        for line in report.lines(MAX_LISTED):
            print(f"  {line}" if split_header else line)
        problems += len(report.problems)
    print(f"{'OK' if not problems else f'{problems} problem(s)'} in {time.perf_counter() - start:.1f} s")
    return 1 if problems else 0
