"""`seglab train task=instance`: instance data and model from the config, fit through the engine, score best.pt.

The run folder is the semantic one (config.yaml, best.pt chosen on `metric` (default val mask AP),
last.pt, metrics.csv, curves.png, metrics.json, samples/); the checkpoint records task "instance",
the thing classes, and preprocess {mean, std, resize: longer_side, size: imgsz, native_scale, and object_size
when set}. With calibrate_min_score
(default) best.pt then gets the min_score chosen on training images (seglab/tasks/instance/calibrate.py),
which the final val scoring uses unless min_score= is given.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import seglab
from seglab.config import Config, ConfigError, given_keys
from seglab.data import resolve_root, write_skipped
from seglab.data.instance import (
    INSTANCE_FORMATS,
    InstanceDataset,
    collate,
    open_instance_split,
)
from seglab.data.instance.object_size import OBJECT_SIZE_KEY
from seglab.data.io import image_size
from seglab.data.size import as_hw
from seglab.data.spec import ClassTable, default_colors
from seglab.engine import distributed
from seglab.engine.device import Runtime
from seglab.engine.loop import fit
from seglab.engine.rng import seed_everything
from seglab.engine.run_folder import write_json
from seglab.engine.sinks import run_folder_sinks
from seglab.engine.trainer import TrainState
from seglab.inference.instance import RESIZE, InstanceOptions, InstancePredictor
from seglab.inference.instance_tiling import SCALE_KEY
from seglab.models import build_model, model_arguments
from seglab.tasks.instance.batch import instance_batch_loss
from seglab.tasks.instance.calibrate import (
    calibrate_checkpoint,
    format_calibration,
    use_recorded_min_score,
)
from seglab.tasks.instance.evaluate import (
    SELECTION_METRICS,
    evaluate,
    format_table,
    training_validator,
)
from seglab.tasks.instance.samples import write_samples
from seglab.tasks.training import (
    fit_options,
    loader_and_trainer,
    open_run_folder,
    resume_note,
    run_training,
    start_state,
)

UNSET = (None, "")  # a model-argument key left at "" / null: the constructor's own default applies


def training_size(cfg: Config) -> int:
    """The longer side images are resized to: instance training takes one size, not H x W."""
    height, width = as_hw(cfg.imgsz)
    if height != width:
        raise ConfigError(f"imgsz={cfg.imgsz!r}: instance training resizes each image's longer side to one size "
                          "(aspect kept); give one number, e.g. imgsz=512")
    return height


def instance_split(cfg: Config, split: str, skip_bad: bool):
    """The split of cfg.data (format detected; seed and val_fraction fix the random split of unsplit layouts)."""
    fmt = cfg.dataset if cfg.dataset in INSTANCE_FORMATS else "auto"
    return open_instance_split(resolve_root(cfg.data), split, seed=cfg.seed, val_fraction=cfg.val_fraction,
                               skip_bad=skip_bad, fmt=fmt)


def thing_classes(names: list[str]) -> ClassTable:
    """The thing classes with distinct colours (the palette without its black background entry)."""
    return ClassTable(list(names), default_colors(len(names) + 1)[1:])


def check_metric(cfg: Config) -> str:
    metric = cfg.metric or next(iter(SELECTION_METRICS))
    if metric not in SELECTION_METRICS:
        raise ConfigError(f"metric={cfg.metric!r}: instance training selects best.pt by one of "
                          f"{', '.join(SELECTION_METRICS)}")
    return metric


def train(cfg: Config) -> Path:
    """Train per `cfg`; returns the run folder."""
    given = given_keys(cfg)  # before the replacements below, which make a Config without them
    return run_training(cfg, check_metric, lambda *frame: _train(*frame, given))


def native_scale(split, size: int) -> float:
    """Training pixels per source pixel, the median over the training images (what tiling runs at)."""
    return float(statistics.median(size / max(image_size(item.image)) for item in split.items))


def _train(cfg: Config, ckpt: dict | None, resumed_dir: Path | None, group: distributed.Group,
           device_name: str, given: frozenset) -> Path:
    seed_everything(cfg.seed, cfg.deterministic)
    runtime = Runtime.from_config(device_name, cfg.precision, cfg.channels_last)
    size = training_size(cfg)
    train_split, val_split = instance_split(cfg, "train", cfg.skip_bad), instance_split(cfg, "val", cfg.skip_bad)
    classes = thing_classes(train_split.classes)
    options = {k: v for k, v in cfg.to_dict().items() if v not in UNSET}
    args = model_arguments(cfg.model, classes.num_classes, options)
    model = runtime.prepare_model(build_model(cfg.model, args))
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": RESIZE, "size": size, SCALE_KEY: native_scale(train_split, size)}
    if cfg.object_size:
        preprocess[OBJECT_SIZE_KEY] = float(cfg.object_size)  # the scale policy travels with the weights
    meta = {"task": "instance", "arch": {"name": cfg.model, "args": args}, "classes": classes,
            "preprocess": preprocess, "config": cfg.to_dict(),
            "category_ids": list(train_split.category_ids or range(1, classes.num_classes + 1))}

    cache = str(cfg.cache).lower() == "ram"  # masks at the training size are large: RAM only when asked
    augment = cfg.augment_preset if cfg.augment else "none"
    object_size = cfg.object_size or None
    train_set = InstanceDataset(train_split, size, augment=augment, cache=cache, skip_bad=cfg.skip_bad,
                                object_size=object_size).preload()
    val_set = InstanceDataset(val_split, size, cache=cache, skip_bad=cfg.skip_bad, object_size=object_size).preload()
    sampler, loader, trainer = loader_and_trainer(cfg, model, train_set, collate, runtime, preprocess, group,
                                                  instance_batch_loss)
    # everything is built and checked: only now make the run folder
    run_dir = open_run_folder(cfg, resumed_dir, group)
    if group.is_main:
        write_skipped(run_dir, train_set, val_set)

    state = start_state(trainer, ckpt)
    verbose = cfg.verbose and group.is_main
    if verbose:
        what = resume_note(run_dir, state, ckpt is not None)
        scaling = (f"objects scaled to {object_size:g} px across, windows of at most {size} px" if object_size
                   else f"longer side {size}")
        print(f"seglab {seglab.__version__} train (instance): {cfg.model} {args} on {train_split.root} "
              f"({train_split.format}; {len(train_set)} train / {len(val_set)} val images, classes "
              f"{', '.join(classes.names)}); {scaling}; {runtime.describe()}; "
              f"{group.world_size} process(es); seed {cfg.seed}; {what}", flush=True)
    inference = InstanceOptions.from_config(cfg)
    opts = fit_options(cfg, verbose, SELECTION_METRICS)
    sinks = run_folder_sinks(run_dir, meta, cfg.save_every, verbose, curve="val_mask_ap") if group.is_main else []
    validate = training_validator(val_set, runtime, preprocess, classes, inference)
    state = fit(trainer, loader, sampler, validate, state, opts, classes.names, group, sinks)
    if group.is_main:
        _final_report(cfg, run_dir, runtime, train_set, val_set, inference, state, verbose, given)
    distributed.barrier(group)
    return run_dir


def _final_report(cfg: Config, run_dir: Path, runtime: Runtime, train_set: InstanceDataset, val_set: InstanceDataset,
                  options: InstanceOptions, state: TrainState, verbose: bool, given: frozenset) -> None:
    """Calibrate min_score of best.pt on training images, score it on val (at each image's own size by
    default); metrics.json, samples/, a summary."""
    best = run_dir / "best.pt"
    if not best.exists():  # no epoch had a defined selection metric (e.g. val without objects)
        best = run_dir / "last.pt"
    predictor = InstancePredictor(best, runtime, options)
    calibration = calibrate_checkpoint(predictor, train_set.split, cfg.seed) if cfg.calibrate_min_score else None
    use_recorded_min_score(predictor, given)
    result = evaluate(predictor, val_set, cfg.resolution)
    history = {"epochs": len(state.history), "best_epoch": state.best_epoch, "train_seconds": state.elapsed}
    write_json(run_dir / "metrics.json", {"split": "val", "inference": predictor.describe(), **result, **history,
                                          **({"calibration": calibration} if calibration else {})})
    write_samples(predictor, val_set.split, run_dir / "samples", cfg.samples)
    if verbose:
        if calibration:
            print("\n" + format_calibration(calibration))
        print(f"\nbest.pt (epoch {state.best_epoch}) on val at {cfg.resolution} resolution:")
        print(format_table(result))
        print(f"trained {history['epochs']} epochs in {state.elapsed / 60:.1f} min")
        print(f"run folder: {run_dir.resolve()}\n  weights {run_dir / 'best.pt'}, {run_dir / 'last.pt'}\n"
              f"  metrics {run_dir / 'metrics.csv'}, {run_dir / 'metrics.json'}\n  curves  {run_dir / 'curves.png'}\n"
              f"  samples {run_dir / 'samples'}/")
