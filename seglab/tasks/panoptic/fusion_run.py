"""`seglab train task=panoptic semantic_model=A.pt instance_model=B.pt data=...` (a fusion): nothing to fit.

The run folder gets best.pt, a fusion checkpoint without weights that records both checkpoints (absolute
paths), the classes and the three fusion parameters, so `seglab val|predict model=runs/<name>` works like
any panoptic run; metrics.json scores it on val at each image's own size, samples/ shows it.
"""

from __future__ import annotations

from pathlib import Path

import seglab
from seglab.config import Config
from seglab.data.panoptic import PanopticDataset
from seglab.engine.checkpoint import atomic_save
from seglab.engine.device import Runtime
from seglab.engine.run_folder import new_run_dir, write_config, write_json
from seglab.tasks.panoptic.evaluate import evaluate, format_table
from seglab.tasks.panoptic.predictors import fusion_from_config
from seglab.tasks.panoptic.samples import write_samples
from seglab.tasks.panoptic.splits import check_classes, panoptic_split


def assemble_fusion(cfg: Config) -> Path:
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    predictor = fusion_from_config(cfg, runtime)
    val_split = panoptic_split(cfg, "val", cfg.skip_bad)
    check_classes(val_split, predictor)
    run_dir = new_run_dir(cfg.project, cfg.name or "fusion", cfg.exist_ok)
    write_config(run_dir, cfg.to_dict())
    atomic_save({**predictor.checkpoint, "seglab_version": seglab.__version__, "config": cfg.to_dict()},
                run_dir / "best.pt")
    result = evaluate(predictor, PanopticDataset(val_split, predictor.size).preload(), "original")
    write_json(run_dir / "metrics.json", {"split": "val", "inference": predictor.describe(), **result})
    write_samples(predictor, val_split, run_dir / "samples", cfg.samples)
    if cfg.verbose:
        print(f"fusion (nothing to train): {predictor.describe()}\non val at original resolution:")
        print(format_table(result))
        print(f"run folder: {run_dir.resolve()} (best.pt records both checkpoints)")
    return run_dir
