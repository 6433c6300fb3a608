"""The prompts file `seglab track prompts=...` reads: a JSON list, one entry per object and frame.

    [{"frame": 0, "obj_id": 1, "points": [[320, 200], [300, 260]], "labels": [1, 0]},
     {"frame": 0, "obj_id": 2, "box": [40, 60, 180, 300]},
     {"frame": 30, "obj_id": 1, "mask": "fix_30.png"}]          # a mask PNG (non-zero = the object)

Paths of masks are relative to the prompts file. Entries are applied in the order given.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.io import DataError

FIELDS = {"frame", "obj_id", "points", "labels", "box", "mask"}


def read_prompts(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prompts={path}: no such file (a JSON list of {{frame, obj_id, points/labels, box, mask}})")
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected a non-empty JSON list of prompts")
    out = []
    for i, entry in enumerate(entries):
        where = f"{path} entry {i}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object with frame, obj_id and points/labels, box or mask")
        unknown = set(entry) - FIELDS
        if unknown:
            raise DataError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; fields: {', '.join(sorted(FIELDS))}")
        for name in ("frame", "obj_id"):
            if not isinstance(entry.get(name), int):
                raise DataError(f"{where}: '{name}' must be an integer")
        prompt = {k: entry[k] for k in ("points", "labels", "box") if k in entry}
        if "mask" in entry:
            mask_path = path.parent / entry["mask"]
            try:
                prompt["mask"] = np.asarray(Image.open(mask_path)) > 0
            except OSError as e:
                raise DataError(f"{where}: mask {mask_path} is not a readable image ({e})") from None
            if prompt["mask"].ndim == 3:
                prompt["mask"] = prompt["mask"].any(-1)
        out.append({"frame": entry["frame"], "obj_id": entry["obj_id"], "prompt": prompt, "where": where})
    return out
