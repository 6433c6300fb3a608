"""`seglab train task=panoptic`: panoptic data and model from the config, fit through the engine, score best.pt.

The run folder is the instance one (config.yaml, best.pt chosen on `metric` (default val PQ), last.pt,
metrics.csv, curves.png, metrics.json, samples/); the checkpoint records task "panoptic", the classes, is_thing,
the dataset's category ids and preprocess {mean, std, resize: longer_side, size: imgsz, native_scale: training
pixels per source pixel, the median over the training images (what tiled inference runs at)}.
A fusion (semantic_model= + instance_model=) trains nothing: seglab/tasks/panoptic/fusion_run.py writes its run folder.
"""

from __future__ import annotations

from pathlib import Path

import seglab
from seglab.config import Config, ConfigError
from seglab.data import write_skipped
from seglab.data.panoptic import PanopticDataset, collate
from seglab.engine import distributed
from seglab.engine.device import Runtime
from seglab.engine.loop import fit
from seglab.engine.rng import seed_everything
from seglab.engine.run_folder import write_json
from seglab.engine.sinks import run_folder_sinks
from seglab.engine.trainer import TrainState
from seglab.inference.instance import RESIZE
from seglab.inference.instance_tiling import SCALE_KEY
from seglab.inference.panoptic import PanopticPredictor
from seglab.models import build_model, model_arguments
from seglab.tasks.instance.train import UNSET, native_scale, training_size
from seglab.tasks.panoptic.batch import batch_loss_for
from seglab.tasks.panoptic.evaluate import (
    SELECTION_METRICS,
    evaluate,
    format_table,
    training_validator,
)
from seglab.tasks.panoptic.fusion_run import assemble_fusion
from seglab.tasks.panoptic.predictors import is_direct_fusion, names_parts
from seglab.tasks.panoptic.samples import write_samples
from seglab.tasks.panoptic.splits import class_table, panoptic_split
from seglab.tasks.training import (
    fit_options,
    loader_and_trainer,
    open_run_folder,
    resume_note,
    run_training,
    start_state,
)


def check_metric(cfg: Config) -> str:
    metric = cfg.metric or next(iter(SELECTION_METRICS))
    if metric not in SELECTION_METRICS:
        raise ConfigError(f"metric={cfg.metric!r}: panoptic training selects best.pt by one of "
                          f"{', '.join(SELECTION_METRICS)}")
    return metric


def train(cfg: Config) -> Path:
    """Train per `cfg`; returns the run folder."""
    if names_parts(cfg):  # a fusion of two checkpoints: nothing to fit
        if not is_direct_fusion(cfg):
            raise ConfigError(f"model={cfg.model}: semantic_model= / instance_model= make a fusion, which has no "
                              "architecture; leave model= out")
        return assemble_fusion(cfg)
    return run_training(cfg, check_metric, _train)


def _train(cfg: Config, ckpt: dict | None, resumed_dir: Path | None, group: distributed.Group,
           device_name: str) -> Path:
    seed_everything(cfg.seed, cfg.deterministic)
    runtime = Runtime.from_config(device_name, cfg.precision, cfg.channels_last)
    size = training_size(cfg)
    train_split, val_split = panoptic_split(cfg, "train", cfg.skip_bad), panoptic_split(cfg, "val", cfg.skip_bad)
    classes = class_table(train_split)
    options = {k: v for k, v in cfg.to_dict().items() if v not in UNSET}
    args = {**model_arguments(cfg.model, classes.num_classes, options), "is_thing": list(train_split.is_thing)}
    model = runtime.prepare_model(build_model(cfg.model, args))
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": RESIZE, "size": size, SCALE_KEY: native_scale(train_split, size)}  # what tiling runs at
    meta = {"task": "panoptic", "arch": {"name": cfg.model, "args": args}, "classes": classes,
            "is_thing": list(train_split.is_thing), "category_ids": list(train_split.category_ids),
            "preprocess": preprocess, "config": cfg.to_dict()}

    cache = str(cfg.cache).lower() == "ram"
    augment = cfg.augment_preset if cfg.augment else "none"
    train_set = PanopticDataset(train_split, size, augment=augment, cache=cache, skip_bad=cfg.skip_bad).preload()
    val_set = PanopticDataset(val_split, size, cache=cache, skip_bad=cfg.skip_bad).preload()
    sampler, loader, trainer = loader_and_trainer(cfg, model, train_set, collate, runtime, preprocess, group,
                                                  batch_loss_for(train_split.is_thing))
    run_dir = open_run_folder(cfg, resumed_dir, group)  # everything is built and checked: only now
    if group.is_main:
        write_skipped(run_dir, train_set, val_set)

    state = start_state(trainer, ckpt)
    verbose = cfg.verbose and group.is_main
    if verbose:
        things = ", ".join(f"{n} ({'thing' if t else 'stuff'})" for n, t in zip(classes.names, train_split.is_thing))
        print(f"seglab {seglab.__version__} train (panoptic): {cfg.model} {args} on {train_split.root} "
              f"({train_split.format}; {len(train_set)} train / {len(val_set)} val images, classes {things}); "
              f"longer side {size}; {runtime.describe()}; {group.world_size} process(es); seed {cfg.seed}; "
              f"{resume_note(run_dir, state, ckpt is not None)}", flush=True)
    opts = fit_options(cfg, verbose, SELECTION_METRICS)
    sinks = run_folder_sinks(run_dir, meta, cfg.save_every, verbose, curve="val_pq") if group.is_main else []
    validate = training_validator(val_set, runtime, {k: meta[k] for k in ("classes", "is_thing", "category_ids",
                                                                           "preprocess")})
    state = fit(trainer, loader, sampler, validate, state, opts, classes.names, group, sinks)
    if group.is_main:
        _final_report(cfg, run_dir, runtime, val_set, state, verbose)
    distributed.barrier(group)
    return run_dir


def _final_report(cfg: Config, run_dir: Path, runtime: Runtime, val_set: PanopticDataset, state: TrainState,
                  verbose: bool) -> None:
    """Score best.pt on val (at each image's own size by default); metrics.json, samples/, a summary."""
    best = run_dir / "best.pt"
    if not best.exists():  # no epoch had a defined selection metric
        best = run_dir / "last.pt"
    predictor = PanopticPredictor(best, runtime)
    result = evaluate(predictor, val_set, cfg.resolution)
    history = {"epochs": len(state.history), "best_epoch": state.best_epoch, "train_seconds": state.elapsed}
    write_json(run_dir / "metrics.json", {"split": "val", "inference": predictor.describe(), **result, **history})
    write_samples(predictor, val_set.split, run_dir / "samples", cfg.samples)
    if verbose:
        print(f"\nbest.pt (epoch {state.best_epoch}) on val at {cfg.resolution} resolution:")
        print(format_table(result))
        print(f"trained {history['epochs']} epochs in {state.elapsed / 60:.1f} min\nrun folder: {run_dir.resolve()}")
