"""`seglab train`: build data, model, loss and optimizer from the config, fit, then score best.pt."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

import seglab
from seglab.config import Config, parse_time
from seglab.data import SegmentationDataset, open_split
from seglab.engine.device import Runtime
from seglab.engine.evaluate import evaluate, summary
from seglab.engine.optim import ProgressSchedule, build_optimizer
from seglab.engine.run_folder import new_run_dir, write_config, write_json
from seglab.engine.trainer import Trainer, fit, seed_everything
from seglab.inference.predictor import Predictor
from seglab.losses import build_loss
from seglab.metrics import format_class_table
from seglab.models import build_model, model_arguments
from seglab.modes.samples import write_samples

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def train(cfg: Config) -> Path:
    """Train per `cfg`; returns the run folder."""
    seed_everything(cfg.seed)
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    train_spec, val_spec = open_split(cfg, "train"), open_split(cfg, "val")
    classes = train_spec.classes
    run_dir = new_run_dir(cfg.project, cfg.name or "train", cfg.exist_ok)
    write_config(run_dir, cfg.to_dict())

    args = model_arguments(cfg.model, classes.num_classes, cfg.to_dict())
    model = runtime.prepare_model(build_model(cfg.model, args))
    norm = getattr(model, "normalization", None) or {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    preprocess = {"mean": list(norm["mean"]), "std": list(norm["std"]), "resize": "stretch",
                  "size": [cfg.imgsz, cfg.imgsz]}
    meta = {"arch": {"name": cfg.model, "args": args}, "classes": classes, "preprocess": preprocess,
            "config": cfg.to_dict()}

    train_set = SegmentationDataset(train_spec, cfg.imgsz, augment=cfg.augment, cache=cfg.cache).preload()
    val_set = SegmentationDataset(val_spec, cfg.imgsz, cache=cfg.cache).preload()
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=len(train_set) > cfg.batch,
                        num_workers=cfg.workers, persistent_workers=cfg.workers > 0,
                        pin_memory=runtime.device.type == "cuda",
                        generator=torch.Generator().manual_seed(cfg.seed))
    optimizer = build_optimizer(model, cfg)
    trainer = Trainer(
        model=model,
        loss_fn=build_loss(cfg.loss, classes.num_classes, classes.ignore_index),
        optimizer=optimizer,
        schedule=ProgressSchedule(optimizer, cfg.schedule),
        runtime=runtime,
        preprocess=preprocess,
        warmup_steps=round(cfg.warmup_epochs * len(loader)),
        scaler=torch.amp.GradScaler("cuda") if runtime.precision == "fp16" else None,
    )
    if cfg.verbose:
        print(f"seglab {seglab.__version__} train: {cfg.model} {args} on {train_spec.root} "
              f"({len(train_set)} train / {len(val_set)} val images, {classes.num_classes} classes); "
              f"{runtime.describe()}; run folder {run_dir}", flush=True)
    history = fit(trainer, loader, val_set, run_dir, meta, cfg.epochs, parse_time(cfg.time), cfg.batch, cfg.verbose)

    predictor = Predictor(run_dir / "best.pt", runtime)
    result = evaluate(predictor.model, val_set, runtime, preprocess, cfg.batch, trainer.loss_fn,
                      resolution=cfg.resolution, boundary=True)
    final = {"split": "val", **summary(result, classes.names), **history}
    write_json(run_dir / "metrics.json", final)
    write_samples(predictor, val_spec, run_dir / "samples", cfg.samples)
    if cfg.verbose:
        print(f"\nbest.pt (epoch {history['best_epoch']}) on val at {cfg.resolution} resolution:")
        print(format_class_table(result, classes.names))
        print(f"pixel accuracy {final['pixel_accuracy']:.4f}  mIoU {final['miou']:.4f}  "
              f"trained {history['epochs']} epochs in {history['train_seconds'] / 60:.1f} min")
        print(f"run folder: {run_dir.resolve()}\n  weights {run_dir / 'best.pt'}, {run_dir / 'last.pt'}\n"
              f"  metrics {run_dir / 'metrics.csv'}, {run_dir / 'metrics.json'}\n  curves  {run_dir / 'curves.png'}\n"
              f"  samples {run_dir / 'samples'}/")
    return run_dir
