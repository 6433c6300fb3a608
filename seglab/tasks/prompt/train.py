"""`seglab train task=prompt`: a click model trained with simulated clicks, fit through the engine.

Data: the objects of one or more datasets (`data=a,b`, seglab/data/prompt/), one object per image per
epoch; model: a seglab/models/prompt/ architecture (click_seg on ImageNet EfficientNet-Lite0 by
default); loss: seglab/tasks/prompt/simulate.py. best.pt is chosen on val NoC@90 (lower is better:
the selection sign is -1) measured through the same Predictor `seglab val` uses, on at most
`objects_per_image` objects of each val image. The checkpoint records task "prompt" and preprocess
{mean, std, resize: longer_side_square, size}.
"""

from __future__ import annotations

from pathlib import Path

import torch

import seglab
from seglab.config import Config, ConfigError
from seglab.data.prompt import ObjectDataset, collate, dataset_roots, open_object_split
from seglab.data.size import as_hw
from seglab.data.spec import ClassTable
from seglab.engine import distributed
from seglab.engine.device import Runtime
from seglab.engine.loop import fit
from seglab.engine.rng import seed_everything
from seglab.engine.run_folder import write_json
from seglab.engine.sinks import run_folder_sinks
from seglab.models import build_model, model_arguments
from seglab.prompt.click_backend import ClickBackend, load
from seglab.prompt.predictor import Predictor
from seglab.tasks.prompt.evaluate import combined, evaluate_split, format_table
from seglab.tasks.prompt.simulate import prompt_batch_loss
from seglab.tasks.training import (
    fit_options,
    loader_and_trainer,
    open_run_folder,
    resume_note,
    run_training,
    start_state,
)

RESIZE = "longer_side_square"  # longer side to `size`, padded bottom / right to size x size (SAM's frame)
# metric -> sign (higher is better); the first picks best.pt by default
SELECTION_METRICS = {"noc_90": -1.0, "noc_85": -1.0, "miou_at_1": 1.0, "miou_at_3": 1.0, "miou_at_5": 1.0}
ROW = {"val_noc_85": "noc_85", "val_noc_90": "noc_90", "val_miou_at_1": "miou_at_1", "val_miou_at_3": "miou_at_3"}
OBJECT_CLASSES = ClassTable(["object"], [(220, 60, 60)])
UNSET = (None, "")


def training_size(cfg: Config) -> int:
    height, width = as_hw(cfg.imgsz)
    if height != width:
        raise ConfigError(f"imgsz={cfg.imgsz!r}: prompt models take square inputs (longer side resized, padded); "
                          "give one number, e.g. imgsz=512")
    return height


def object_splits(cfg: Config, split: str, seed: int | None = None, val_fraction: float | None = None,
                  data: str | None = None) -> list:
    fmt = cfg.dataset if cfg.dataset != "auto" else "auto"
    return [open_object_split(root, split, seed=cfg.seed if seed is None else seed,
                              val_fraction=cfg.val_fraction if val_fraction is None else val_fraction,
                              skip_bad=cfg.skip_bad, fmt=fmt) for root in dataset_roots(cfg.data if data is None else data)]


def selection_data(cfg: Config) -> str:
    """The datasets whose val splits pick best.pt: `val_data` (each one of `data`), or all of `data`."""
    if cfg.val_data in UNSET:
        return cfg.data
    trained = {root.resolve() for root in dataset_roots(cfg.data)}
    for root in dataset_roots(cfg.val_data):
        if root.resolve() not in trained:
            raise ConfigError(f"val_data={cfg.val_data!r}: {root} is not one of data={cfg.data!r} "
                              "(best.pt is picked on the val splits of the datasets trained on)")
    return cfg.val_data


def check_metric(cfg: Config) -> str:
    metric = cfg.metric or next(iter(SELECTION_METRICS))
    if metric not in SELECTION_METRICS:
        raise ConfigError(f"metric={cfg.metric!r}: prompt training selects best.pt by one of {', '.join(SELECTION_METRICS)}")
    return metric


def training_validator(val_splits: list, size: int, preprocess: dict, device, max_clicks: int, per_image: int):
    """`validate(model)`: the click benchmark of the in-memory model through a Predictor."""

    def validate(model: torch.nn.Module) -> dict:
        was_training = model.training
        try:
            backend = ClickBackend(model, size, preprocess["mean"], preprocess["std"], device)
            predictor = Predictor(backend)
            results = [evaluate_split(predictor, split, max_clicks, per_image) for split in val_splits]
        finally:
            model.train(was_training)
        metrics = combined(results)
        return {"dataset": metrics, "loss": None, "row": {column: metrics[key] for column, key in ROW.items()}}

    return validate


def _fine_tune_sam(*args) -> Path:
    from seglab.tasks.prompt.sam_finetune import (
        fit_sam,  # builds on this module's helpers
    )

    return fit_sam(*args)


# architectures trained by a loop of their own (official weights fine-tuned); every other one: the click model's
OWN_LOOPS = {"sam": _fine_tune_sam}


def train(cfg: Config) -> Path:
    return run_training(cfg, check_metric, lambda cfg, *frame: OWN_LOOPS.get(cfg.model, _train)(cfg, *frame))


def _train(cfg: Config, ckpt, resumed_dir, group, device_name: str) -> Path:
    seed_everything(cfg.seed, cfg.deterministic)
    runtime = Runtime.from_config(device_name, cfg.precision, cfg.channels_last)
    size = training_size(cfg)
    train_splits, val_splits = object_splits(cfg, "train"), object_splits(cfg, "val", data=selection_data(cfg))
    options = {k: v for k, v in cfg.to_dict().items() if v not in UNSET}
    args = model_arguments(cfg.model, 1, options)
    model = runtime.prepare_model(build_model(cfg.model, args))
    if size % model.multiple:
        raise ConfigError(f"imgsz={size}: {cfg.model} needs a multiple of {model.multiple}")
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": RESIZE, "size": size}
    meta = {"task": "prompt", "arch": {"name": cfg.model, "args": args}, "classes": OBJECT_CLASSES,
            "preprocess": preprocess, "config": cfg.to_dict()}
    train_set = ObjectDataset(train_splits, size, augment=cfg.augment)
    sampler, loader, trainer = loader_and_trainer(cfg, model, train_set, collate, runtime, preprocess, group,
                                                  prompt_batch_loss)
    run_dir = open_run_folder(cfg, resumed_dir, group)
    state = start_state(trainer, ckpt)
    verbose = cfg.verbose and group.is_main
    if verbose:
        data = ", ".join(f"{s.root} ({s.format}, {len(s.images)} train images)" for s in train_splits)
        print(f"seglab {seglab.__version__} train (prompt): {cfg.model} {args} on {data}; "
              f"{sum(len(s.images) for s in val_splits)} val images; size {size}; {runtime.describe()}; "
              f"seed {cfg.seed}; {resume_note(run_dir, state, ckpt is not None)}", flush=True)
    opts = fit_options(cfg, verbose, SELECTION_METRICS)
    sinks = run_folder_sinks(run_dir, meta, cfg.save_every, verbose, curve="val_noc_90") if group.is_main else []
    validate = training_validator(val_splits, size, preprocess, runtime.device, cfg.max_clicks, cfg.objects_per_image)
    state = fit(trainer, loader, sampler, validate, state, opts, OBJECT_CLASSES.names, group, sinks)
    if group.is_main:
        best = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
        predictor = Predictor(load(best, device=str(runtime.device)))
        results = [evaluate_split(predictor, split, cfg.max_clicks, cfg.objects_per_image) for split in val_splits]
        history = {"epochs": len(state.history), "best_epoch": state.best_epoch, "train_seconds": state.elapsed}
        write_json(run_dir / "metrics.json", {"split": "val", "inference": predictor.backend.name,
                                              **combined(results), "datasets": results, **history})
        if verbose:
            print(f"\nbest.pt (epoch {state.best_epoch}) on val, at each image's own size:\n{format_table(results)}\n"
                  f"trained {history['epochs']} epochs in {state.elapsed / 60:.1f} min\nrun folder: {run_dir.resolve()}")
    distributed.barrier(group)
    return run_dir
