"""`seglab predict` for a panoptic checkpoint (or a fusion: semantic_model= + instance_model=): per image a COCO panoptic PNG and an overlay, and
one predictions.json in COCO panoptic format (seglab/inference/panoptic_outputs.py).

Each image goes through the predictor's `predict` (the path `seglab val` scores; large images as tiles per `mode=`,
seglab/inference/panoptic_tiling.py). A file that cannot be used is
reported, skipped and listed in errors.txt; nothing predicted at all is an error (exit 1). Videos are skipped.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from seglab.config import Config
from seglab.data.io import DataError, read_image
from seglab.engine.device import Runtime
from seglab.inference.panoptic_outputs import (
    NAMES,
    annotation_entry,
    predictions_json,
    write_panoptic,
)
from seglab.inference.sources import expand_source
from seglab.models.source import resolve_model
from seglab.tasks.panoptic.predictors import is_direct_fusion, open_predictor


def output_folder(cfg: Config) -> Path:
    if cfg.out:
        return Path(cfg.out)
    if is_direct_fusion(cfg):
        return Path("runs") / "fusion" / "predict"
    return resolve_model(cfg.model).path.parent / "predict"


def predict(cfg: Config) -> Path:
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    predictor = open_predictor(cfg, runtime)
    sources = expand_source(cfg.source)
    out = output_folder(cfg)
    out.mkdir(parents=True, exist_ok=True)
    failed = list(sources.skipped) + [f"{p}: video input is not supported for panoptic models" for p in sources.videos]
    for message in failed:
        print(f"skipped: {message}", file=sys.stderr)
    annotations, start = [], time.perf_counter()
    for path in sources.images:
        try:
            image = np.asarray(read_image(path))
            prediction = predictor.predict(path)
        except DataError as e:
            message = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
            failed.append(message)
            print(f"skipped: {message}", file=sys.stderr)
            continue
        write_panoptic(out, path.stem, image, prediction, predictor.classes, predictor.is_thing)
        annotations.append(annotation_entry(len(annotations) + 1, path.stem, prediction, predictor.category_ids))
        annotations[-1]["image_file"] = path.name
    document = predictions_json(annotations, predictor.classes, predictor.is_thing, predictor.category_ids)
    (out / "predictions.json").write_text(json.dumps(document))
    if cfg.verbose:
        segments = sum(len(a["segments_info"]) for a in annotations)
        print(f"{predictor.describe()}\npredicted {len(annotations)} of {len(sources)} inputs ({segments} segments) "
              f"in {time.perf_counter() - start:.1f} s -> {out.resolve()}\n  ({NAMES})")
    if failed:
        (out / "errors.txt").write_text("\n".join(failed) + "\n")
        if cfg.verbose:
            print(f"{len(failed)} inputs skipped, listed in {out / 'errors.txt'}")
    if not annotations:
        raise DataError(f"nothing could be predicted from source={cfg.source!r}"
                        + (f": {len(failed)} input(s) failed, listed in {out / 'errors.txt'}" if failed else ""))
    return out
