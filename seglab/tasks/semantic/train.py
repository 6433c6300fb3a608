"""`seglab train`: build data, model, loss and optimizer from the config, fit, then score best.pt.

Single process: `seglab train ...`. Several: `torchrun --nproc_per_node=N -m seglab train ...`
(`batch` is the global batch, split evenly over the processes; rank 0 writes the run folder).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import seglab
from seglab.config import Config, ConfigError, warn_unused_format_keys
from seglab.data import SegmentationDataset, dataset_format, open_split, write_skipped
from seglab.data.class_presence import require_two_classes
from seglab.data.size import as_hw
from seglab.engine import distributed
from seglab.engine.device import Runtime
from seglab.engine.ema import ModelEMA
from seglab.engine.optim import ProgressSchedule, build_optimizer
from seglab.engine.rng import seed_everything
from seglab.engine.run_folder import write_json
from seglab.engine.sampler import EpochBatchSampler
from seglab.engine.loop import fit
from seglab.engine.sinks import run_folder_sinks
from seglab.engine.trainer import SELECTION_METRICS, Trainer, TrainState
from seglab.engine.evaluate import summary
from seglab.inference.evaluate import evaluate, training_validator
from seglab.inference.predictor import InferenceOptions, Predictor
from seglab.losses import build_loss, median_frequency_weights
from seglab.metrics import format_class_table
from seglab.models import DEFAULT_MODELS, build_model, model_arguments
from seglab.tasks.semantic.samples import write_samples
from seglab.tasks.training import fit_options, open_run_folder, resume_checkpoint, resume_note, start_state

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CACHE_LIMIT_BYTES = 4 << 30


def use_cache(cfg: Config, images: int, specs=()) -> bool:
    """cache=auto: keep the decoded pairs in RAM when they take under CACHE_LIMIT_BYTES; for resize=crop
    that is at native resolution, measured from the image headers of `specs` (none given: no cache)."""
    choice = str(cfg.cache).lower()
    if choice in ("ram", "true"):
        return True
    if choice in ("off", "false", "none"):
        return False
    if choice != "auto":
        raise ConfigError(f"cache={cfg.cache!r}: expected auto, ram or off")
    resize = getattr(cfg, "resize", "stretch")
    if resize == "crop":
        from seglab.data.dataset import pair_bytes

        return bool(specs) and sum(pair_bytes(spec, cfg.imgsz, resize) for spec in specs) < CACHE_LIMIT_BYTES
    height, width = as_hw(cfg.imgsz)
    return images * 4 * height * width < CACHE_LIMIT_BYTES


def loss_class_weights(cfg: Config, train_set: SegmentationDataset) -> list[float] | None:
    """None, the weights listed in the config, or median-frequency weights of the training masks."""
    weights, classes = cfg.class_weights, train_set.spec.classes
    if weights in (None, "", "none"):
        return None
    if weights == "median":
        masks = (train_set[i][1] for i in range(len(train_set)))
        return median_frequency_weights(masks, classes.num_classes, classes.ignore_index)
    if not isinstance(weights, (list, tuple)) or len(weights) != classes.num_classes:
        raise ConfigError(f"class_weights={weights!r}: expected 'median' or a list of {classes.num_classes} numbers")
    return [float(w) for w in weights]


def train(cfg: Config) -> Path:
    """Train per `cfg`; returns the run folder."""
    cfg = dataclasses.replace(cfg, model=cfg.model or DEFAULT_MODELS["semantic"], metric=cfg.metric or "miou")
    cfg, ckpt, resumed_dir = resume_checkpoint(cfg)
    group, device_name = distributed.init(cfg.device)
    try:
        return _train(cfg, ckpt, resumed_dir, group, device_name)
    finally:
        distributed.shutdown(group)


def _train(cfg: Config, ckpt: dict | None, resumed_dir: Path | None, group: distributed.Group, device_name: str) -> Path:
    seed_everything(cfg.seed, cfg.deterministic)
    runtime = Runtime.from_config(device_name, cfg.precision, cfg.channels_last)
    warn_unused_format_keys(cfg, dataset_format(cfg)[1])  # e.g. classes=binary on a folder dataset
    train_spec, val_spec = open_split(cfg, "train"), open_split(cfg, "val")
    classes = train_spec.classes
    args = model_arguments(cfg.model, classes.num_classes, cfg.to_dict())
    model = build_model(cfg.model, args)
    if cfg.sync_bn and group.active:
        if runtime.device.type != "cuda":
            raise ConfigError("sync_bn=true needs CUDA devices (PyTorch's SyncBatchNorm is GPU-only); on CPU use "
                              "norm=group, or keep BatchNorm with each process normalising its own share")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = runtime.prepare_model(model)
    norm = getattr(model, "normalization", None) or {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    preprocess = {"mean": list(norm["mean"]), "std": list(norm["std"]), "resize": getattr(cfg, "resize", "stretch"),
                  "size": list(as_hw(cfg.imgsz))}
    meta = {"task": "semantic", "arch": {"name": cfg.model, "args": args}, "classes": classes, "preprocess": preprocess,
            "config": cfg.to_dict()}

    cache = use_cache(cfg, len(train_spec.pairs) + len(val_spec.pairs), specs=(train_spec, val_spec))
    augment = cfg.augment_preset if cfg.augment else "none"
    train_set = SegmentationDataset(train_spec, cfg.imgsz, augment=augment, cache=cache, skip_bad=cfg.skip_bad,
                                    resize=getattr(cfg, "resize", "stretch")).preload()
    require_two_classes(train_set)  # one class only: an error with the reason, before any run folder
    val_set = SegmentationDataset(val_spec, cfg.imgsz, cache=cache, skip_bad=cfg.skip_bad,
                                  resize=getattr(cfg, "resize", "stretch")).preload()
    sampler = EpochBatchSampler(len(train_set), cfg.batch, cfg.seed, group.rank, group.world_size)
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=cfg.workers,
                        persistent_workers=cfg.workers > 0, pin_memory=runtime.device.type == "cuda")
    optimizer = build_optimizer(model, cfg)
    ema = ModelEMA(model, cfg.ema) if cfg.ema > 0 else None
    if group.active:
        ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    steps_per_epoch = -(-len(sampler) // max(1, cfg.accumulate))
    trainer = Trainer(
        model=model, optimizer=optimizer,
        loss_fn=build_loss(cfg.loss, classes.num_classes, classes.ignore_index, loss_class_weights(cfg, train_set)),
        schedule=ProgressSchedule(optimizer, cfg.schedule), runtime=runtime, preprocess=preprocess,
        total_steps=cfg.epochs * steps_per_epoch, warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda") if runtime.precision == "fp16" else None,
        ema=ema, clip_grad=cfg.clip_grad, accumulate=max(1, cfg.accumulate),
    )
    if cfg.metric not in SELECTION_METRICS:
        raise ConfigError(f"metric={cfg.metric!r}: expected one of {', '.join(SELECTION_METRICS)}")
    # everything is built and checked: only now make the run folder
    run_dir = open_run_folder(cfg, resumed_dir, group)
    if group.is_main:
        write_skipped(run_dir, train_set, val_set)  # skip_bad=true: <run>/skipped.txt lists the pairs left out

    state = start_state(trainer, ckpt)
    verbose = cfg.verbose and group.is_main
    if verbose:
        what = resume_note(run_dir, state, ckpt is not None)
        print(f"seglab {seglab.__version__} train: {cfg.model} {args} on {train_spec.root} "
              f"({len(train_set)} train / {len(val_set)} val images, {classes.num_classes} classes); "
              f"{runtime.describe()}; {group.world_size} process(es); cache={'ram' if cache else 'off'}; "
              f"seed {cfg.seed}{' deterministic' if cfg.deterministic else ''}; {what}", flush=True)
        for note in train_spec.notes:  # e.g. how 0/255 masks were read
            print(f"note: {note}", flush=True)
    opts = fit_options(cfg, verbose)
    sinks = run_folder_sinks(run_dir, meta, cfg.save_every, verbose) if group.is_main else []
    validate = training_validator(val_set, trainer.runtime, trainer.preprocess, max(1, cfg.batch // group.world_size),
                                  trainer.loss_fn, group)
    state = fit(trainer, loader, sampler, validate, state, opts, classes.names, group, sinks)
    if group.is_main:
        _final_report(cfg, run_dir, runtime, val_set, trainer.loss_fn, state, verbose)
    distributed.barrier(group)
    return run_dir


def _final_report(cfg: Config, run_dir: Path, runtime: Runtime, val_set, loss_fn, state: TrainState, verbose: bool) -> None:
    """Score best.pt on val at the configured resolution; metrics.json, samples/, a summary."""
    predictor = Predictor(run_dir / "best.pt", runtime, InferenceOptions(batch=cfg.batch))
    names = val_set.spec.classes.names
    result = evaluate(predictor, val_set, cfg.resolution, loss_fn, boundary=True)
    history = {"epochs": len(state.history), "best_epoch": state.best_epoch, "train_seconds": state.elapsed}
    final = {"split": "val", **summary(result, names), **history}
    write_json(run_dir / "metrics.json", final)
    write_samples(predictor, val_set.spec, run_dir / "samples", cfg.samples)
    if verbose:
        print(f"\nbest.pt (epoch {state.best_epoch}) on val at {cfg.resolution} resolution:")
        print(format_class_table(result, names))
        print(f"pixel accuracy {final['pixel_accuracy']:.4f}  mIoU {final['miou']:.4f}  "
              f"trained {history['epochs']} epochs in {state.elapsed / 60:.1f} min")
        print(f"run folder: {run_dir.resolve()}\n  weights {run_dir / 'best.pt'}, {run_dir / 'last.pt'}\n"
              f"  metrics {run_dir / 'metrics.csv'}, {run_dir / 'metrics.json'}\n  curves  {run_dir / 'curves.png'}\n"
              f"  samples {run_dir / 'samples'}/")
