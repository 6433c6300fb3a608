"""`seglab val` for an instance checkpoint: COCO mask / box AP and matching accuracy into val_<split>.json.

Every image goes through `InstancePredictor.predict`, the path `seglab predict` runs, with the same
keys (score_threshold, max_detections, min_score), so the AP counts exactly the detections of
predict's predictions.json and the matching accuracy exactly the instances of its id PNGs.
The split is the one the model was trained with: data, seed and val_fraction come from the
checkpoint's config (`data=` picks another dataset). min_score, unless given, is the one calibrated on
training images and recorded in the checkpoint (seglab/tasks/instance/calibrate.py); calibrate=true
(re)calibrates it first, on the checkpoint's training split, and records it in the checkpoint (atomically).
"""

from __future__ import annotations

from seglab.config import Config, given_keys
from seglab.data import DataError, resolve_root
from seglab.data.instance import InstanceDataset, open_instance_split
from seglab.engine.device import Runtime
from seglab.inference.instance import InstanceOptions, InstancePredictor
from seglab.models.source import require, resolve_model
from seglab.tasks.instance.calibrate import calibrate_checkpoint, format_calibration, use_recorded_min_score
from seglab.tasks.instance.evaluate import evaluate, format_table
from seglab.tasks.reporting import write_val_result


def val(cfg: Config) -> dict:
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    if cfg.calibrate:  # the calibration is written into the checkpoint: an exported file cannot hold it
        require(resolve_model(cfg.model), "calibrate=true", ("checkpoint",))
    given = given_keys(cfg)
    predictor = InstancePredictor(cfg.model, runtime, InstanceOptions.from_config(cfg, given))
    trained = predictor.checkpoint.get("config", {})
    calibration = None
    if cfg.calibrate:
        calibration = calibrate_checkpoint(predictor, dataset_split(cfg, predictor, "train").split,
                                           trained.get("seed", cfg.seed))
        if cfg.verbose:
            print(format_calibration(calibration) + f"\nrecorded in {predictor.source}")
    calibrated = use_recorded_min_score(predictor, given)
    dataset = dataset_split(cfg, predictor, cfg.split)
    split = dataset.split
    result = evaluate(predictor, dataset, cfg.resolution)
    if calibration:
        result["calibration"] = calibration
    final, path = write_val_result(cfg, split.root, len(dataset), predictor.describe(), result)
    if cfg.verbose:
        print(f"{cfg.model} on {split.root} split={cfg.split} ({len(dataset)} images), scored at "
              f"{result['resolution']} resolution; {predictor.describe()}" + (f"\n{calibrated}" if calibrated else ""))
        print(format_table(result))
        print(f"written: {path}")
    return final


def dataset_split(cfg: Config, predictor: InstancePredictor, name: str) -> InstanceDataset:
    """Split `name` of the data the model was trained on (its data unless data= is given; its seed and val_fraction)."""
    trained = predictor.checkpoint.get("config", {})
    data = cfg.data or trained.get("data", "")
    split = open_instance_split(resolve_root(data), name, seed=trained.get("seed", cfg.seed),
                                val_fraction=trained.get("val_fraction", cfg.val_fraction), skip_bad=cfg.skip_bad)
    if split.classes != predictor.classes.names:
        raise DataError(f"{split.root}: classes {split.classes} differ from the model's {predictor.classes.names}")
    return InstanceDataset(split, predictor.size, skip_bad=cfg.skip_bad).preload()
