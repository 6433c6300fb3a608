"""Split rules for layouts without official splits (semantic and instance folders, DSB2018, Penn-Fudan).

- `root/splits/<split>.txt` (one image name per line) when it exists; a `splits/` folder without the
  requested list is an error (no silent fallback to a random split).
- otherwise `all` (and `trainval`) is every image, and `train` / `val` are a seeded random split of
  the sorted names: `val_fraction` of them (at least one when there are two or more) go to val.
  The same (names, seed, val_fraction) always gives the same split, on any machine.
"""

from __future__ import annotations

import random
from pathlib import Path

from seglab.data.io import DataError

RANDOM_SPLITS = ("train", "val", "all", "trainval")


def listed_splits(root: Path) -> list[str]:
    """The splits `verify` checks: every splits/<name>.txt, else train and val."""
    folder = Path(root) / "splits"
    listed = sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []
    return listed or ["train", "val"]


def choose(root: Path, names: list[str], split: str, seed: int, val_fraction: float,
           skip_bad: bool = False, skipped: list | None = None, left_out: set[str] = frozenset()) -> list[str]:
    """The names of `split`, in listing order; `left_out` are names already skipped as bad."""
    root = Path(root)
    skipped = [] if skipped is None else skipped
    listed = root / "splits" / f"{split}.txt"
    if listed.is_file():
        wanted = [line.strip() for line in listed.read_text(encoding="utf-8").splitlines() if line.strip()]
        known = set(names)
        unknown = [n for n in wanted if n not in known and n not in left_out]
        if unknown and not skip_bad:
            raise DataError(f"{listed}: lists '{unknown[0]}', which is not an image of the dataset "
                            f"({len(unknown)} such)")
        skipped += [(listed, f"lists '{n}', which is not an image of the dataset") for n in unknown]
        return [n for n in dict.fromkeys(wanted) if n in known]
    if (root / "splits").is_dir():
        raise DataError(f"{listed}: no such split list in {root / 'splits'}")
    if split not in RANDOM_SPLITS:
        raise DataError(f"{root}: split '{split}' does not exist; without splits/<split>.txt the splits are "
                        f"{', '.join(RANDOM_SPLITS)}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction}: must be in [0, 1)")
    ordered = sorted(names)
    if split in ("all", "trainval"):
        return ordered
    shuffled = list(ordered)
    random.Random(seed).shuffle(shuffled)
    n_val = max(1, round(len(ordered) * val_fraction)) if len(ordered) > 1 and val_fraction > 0 else 0
    chosen = set(shuffled[:n_val]) if split == "val" else set(shuffled[n_val:])
    return [n for n in ordered if n in chosen]
