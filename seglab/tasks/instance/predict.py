"""`seglab predict` for an instance checkpoint: per image an instance-id PNG and an overlay, and one
predictions.json (COCO results) for all images (seglab/inference/instance_outputs.py).

Each image goes through `InstancePredictor.predict` (the path `seglab val` scores): the whole image at
the training size, or overlapping tiles merged across the seams when the image is large (mode / tile /
overlap / auto_tile, seglab/inference/instance_tiling.py). Videos go frame by frame through the same
path into <name>_overlay.mp4 (and with save_frames=true per-frame id PNGs; seglab/inference/instance_video.py);
predictions.json holds the images' detections only. A file that cannot be used is reported, skipped and
listed in errors.txt; nothing predicted at all is an error (exit 1). Instances are drawn at min_score, by
default the one calibrated on training images and recorded in the checkpoint (seglab/tasks/instance/calibrate.py).
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
from seglab.inference.instance import InstanceOptions, InstancePrediction, InstancePredictor
from seglab.inference.instance_outputs import NAMES, results_entries, write_instances
from seglab.inference.instance_video import predict_instance_video
from seglab.inference.sources import expand_source
from seglab.models.source import resolve_model
from seglab.tasks.instance.calibrate import use_recorded_min_score


def predict(cfg: Config) -> Path:
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    given = given_keys(cfg)
    predictor = InstancePredictor(cfg.model, runtime, InstanceOptions.from_config(cfg, given))
    calibrated = use_recorded_min_score(predictor, given)  # the checkpoint's calibrated min_score unless given
    sources = expand_source(cfg.source)
    out = Path(cfg.out) if cfg.out else resolve_model(cfg.model).path.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    failed = list(sources.skipped)
    for message in failed:
        print(f"skipped: {message}", file=sys.stderr)
    results, done, frames, start = [], 0, 0, time.perf_counter()
    names = predictor.classes.names
    for path in sources.images:
        try:
            image = np.asarray(read_image(path))
            tiled = predictor.mode_for(*image.shape[:2]) == "tile"  # tiles read full-resolution pixels: these
            prediction = predictor.predict(image if tiled else path)  # else the file, decoded as in training
        except DataError as e:
            message = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
            failed.append(message)
            print(f"skipped: {message}", file=sys.stderr)
            continue
        done += 1
        write_instances(out, path.stem, image, prediction, names, predictor.options.min_score)
        results += entries_in_chunks(done, path.name, prediction, predictor.category_ids, predictor.options.min_score)
    (out / "predictions.json").write_text(json.dumps(results))
    for path in sources.videos:
        try:
            frames += predict_instance_video(predictor, path, out, cfg.save_frames, cfg.smooth)
            done += 1
        except DataError as e:
            message = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
            failed.append(message)
            print(f"skipped: {message}", file=sys.stderr)
    if cfg.verbose:
        videos = f", {frames} video frames" if sources.videos else ""
        print(f"{predictor.describe()}" + (f" ({calibrated})" if calibrated else "")
              + f"\npredicted {done} of {len(sources)} inputs ({len(results)} detections{videos}) "
              f"in {time.perf_counter() - start:.1f} s -> {out.resolve()}\n  ({NAMES}"
              f"{', <name>_overlay.mp4 per video' if sources.videos else ''})")
    if failed:
        (out / "errors.txt").write_text("\n".join(failed) + "\n")
        if cfg.verbose:
            print(f"{len(failed)} inputs skipped, listed in {out / 'errors.txt'}")
    if not done:
        raise DataError(f"nothing could be predicted from source={cfg.source!r}"
                        + (f": {len(failed)} input(s) failed, listed in {out / 'errors.txt'}" if failed else ""))
    return out


def entries_in_chunks(image_id: int, file_name: str, prediction: InstancePrediction, category_ids: list[int],
                      min_score: float, chunk: int = 32) -> list[dict]:
    """`results_entries`, `chunk` instances at a time: a tiled image can hold thousands of instances, and
    full-size masks of all of them at once would not fit in memory."""
    entries = []
    for first in range(0, len(prediction), chunk):
        last = min(first + chunk, len(prediction))
        ids = np.where((prediction.ids > first) & (prediction.ids <= last), prediction.ids - first, 0)
        part = InstancePrediction(ids.astype(prediction.ids.dtype), prediction.scores[first:last],
                                  prediction.labels[first:last])
        for offset, entry in enumerate(results_entries(image_id, file_name, part, category_ids, min_score)):
            entry["instance_id"] = first + offset + 1 if entry["instance_id"] else 0
            entries.append(entry)
    return entries
