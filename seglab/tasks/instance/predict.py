"""`seglab predict` for an instance checkpoint: per image an instance-id PNG and an overlay, and one
predictions.json (COCO results) for all images (seglab/inference/instance_outputs.py).

Each image goes through `InstancePredictor.predict` (the path `seglab val` scores). A file that cannot
be used is reported, skipped and listed in errors.txt; nothing predicted at all is an error (exit 1).
Video input is not supported for instance models yet: videos are listed as skipped.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from seglab.config import Config, given_keys
from seglab.data.io import DataError, read_image
from seglab.engine.device import Runtime
from seglab.inference.instance import InstanceOptions, InstancePredictor
from seglab.inference.instance_outputs import NAMES, results_entries, write_instances
from seglab.inference.sources import expand_source
from seglab.models.source import resolve_model


def predict(cfg: Config) -> Path:
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    predictor = InstancePredictor(cfg.model, runtime, InstanceOptions.from_config(cfg, given_keys(cfg)))
    sources = expand_source(cfg.source)
    out = Path(cfg.out) if cfg.out else resolve_model(cfg.model).path.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    failed = list(sources.skipped)
    failed += [f"{path}: video input is not supported for instance models yet" for path in sources.videos]
    for message in failed:
        print(f"skipped: {message}", file=sys.stderr)
    results, done, start = [], 0, time.perf_counter()
    names = predictor.classes.names
    for path in sources.images:
        try:
            image = np.asarray(read_image(path))
            prediction = predictor.predict(path)
        except DataError as e:
            message = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
            failed.append(message)
            print(f"skipped: {message}", file=sys.stderr)
            continue
        done += 1
        write_instances(out, path.stem, image, prediction, names, predictor.options.min_score)
        results += results_entries(done, path.name, prediction, predictor.category_ids, predictor.options.min_score)
    (out / "predictions.json").write_text(json.dumps(results))
    if cfg.verbose:
        print(f"{predictor.describe()}\npredicted {done} of {len(sources)} inputs ({len(results)} detections) in "
              f"{time.perf_counter() - start:.1f} s -> {out.resolve()}\n  ({NAMES})")
    if failed:
        (out / "errors.txt").write_text("\n".join(failed) + "\n")
        if cfg.verbose:
            print(f"{len(failed)} inputs skipped, listed in {out / 'errors.txt'}")
    if not done:
        raise DataError(f"nothing could be predicted from source={cfg.source!r}"
                        + (f": {len(failed)} input(s) failed, listed in {out / 'errors.txt'}" if failed else ""))
    return out
