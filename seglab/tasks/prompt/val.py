"""`seglab val task=prompt`: the click benchmark (NoC@85/90, NoF, mIoU@1/3/5, timings) into val_<split>.json.

`model=` is a seglab click-model checkpoint (or run folder) or any checkpoint `seglab.prompt.Predictor`
loads (official SAM / SAM 2 / MobileSAM weights: kinds in seglab/prompt/loading.py). Data: `data=`
(several: `data=a,b`, each scored on its own, then combined), else the dataset the click model was
trained on; for a seglab checkpoint the seed and val_fraction of its training fix the random split.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from seglab.config import Config
from seglab.data import DataError
from seglab.engine.checkpoint import load_checkpoint
from seglab.models.source import require, resolve_model
from seglab.prompt.predictor import Predictor
from seglab.tasks.prompt.evaluate import combined, evaluate_split, format_table
from seglab.tasks.prompt.train import object_splits
from seglab.tasks.reporting import write_val_result


def trained_config(path: Path) -> dict:
    """The training config of a seglab checkpoint; {} for other files (official SAM weights)."""
    try:
        return load_checkpoint(path).get("config", {})
    except ValueError:
        return {}


def open_predictor(cfg: Config) -> tuple[Predictor, dict]:
    path = require(resolve_model(cfg.model), "val", ("checkpoint",)).path
    return Predictor(path, device=cfg.device), trained_config(path)


def val(cfg: Config) -> dict:
    predictor, trained = open_predictor(cfg)
    data = cfg.data or trained.get("data", "")
    if not data:
        raise DataError(f"model={cfg.model}: give data= (the file does not say which dataset it was trained on)")
    splits = object_splits(dataclasses.replace(cfg, data=data), cfg.split, seed=trained.get("seed", cfg.seed),
                           val_fraction=trained.get("val_fraction", cfg.val_fraction))
    results = [evaluate_split(predictor, split, cfg.max_clicks, cfg.objects_per_image) for split in splits]
    scores = {**combined(results), "max_clicks": cfg.max_clicks, "datasets": results}
    final, path = write_val_result(cfg, Path(data), sum(len(s.images) for s in splits), predictor.backend.name, scores)
    if cfg.verbose:
        print(f"{cfg.model} ({predictor.backend.name}) split={cfg.split}, at most {cfg.max_clicks} clicks, "
              f"scored at each image's own size")
        print(format_table(results))
        print(f"written: {path}")
    return final
