"""`seglab val` for a panoptic checkpoint (or a fusion: semantic_model= + instance_model=): PQ / SQ / RQ overall, things, stuff and per class into
val_<split>.json.

Every image goes through the predictor's `predict`, the path `seglab predict` runs, so the scores are those of
predict's PNGs and segments_info. The split is the one the model was trained with: data, seed and val_fraction
come from the checkpoint's config (`data=` picks another dataset).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from seglab.config import Config
from seglab.data import DataError, resolve_root
from seglab.data.panoptic import PanopticDataset, open_panoptic_split
from seglab.engine.device import Runtime
from seglab.tasks.panoptic.evaluate import evaluate, format_table
from seglab.tasks.panoptic.predictors import is_direct_fusion, open_predictor
from seglab.tasks.panoptic.splits import check_classes
from seglab.tasks.reporting import write_val_result


def val(cfg: Config) -> dict:
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    predictor = open_predictor(cfg, runtime)
    trained = predictor.checkpoint.get("config", {})
    data = cfg.data or trained.get("data", "")
    if not data:
        raise DataError("panoptic val needs data= (the model records no training data)")
    split = open_panoptic_split(resolve_root(data), cfg.split, seed=trained.get("seed", cfg.seed),
                                val_fraction=trained.get("val_fraction", cfg.val_fraction), skip_bad=cfg.skip_bad)
    check_classes(split, predictor)
    dataset = PanopticDataset(split, predictor.size, skip_bad=cfg.skip_bad).preload()
    result = evaluate(predictor, dataset, cfg.resolution)
    if not cfg.out and is_direct_fusion(cfg):  # no checkpoint folder to write next to
        cfg = dataclasses.replace(cfg, out=str(Path(cfg.project) / "fusion"))
    final, path = write_val_result(cfg, split.root, len(dataset), predictor.describe(), result)
    if cfg.verbose:
        print(f"{cfg.model} on {split.root} split={cfg.split} ({len(dataset)} images), scored at "
              f"{result['resolution']} resolution; {predictor.describe()}")
        print(format_table(result))
        print(f"written: {path}")
    return final
