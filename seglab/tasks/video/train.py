"""`seglab train task=video model=memory_tracker data=<objects> init=<click checkpoint>`: the memory tracker.

Data: the objects of one or more still-image datasets (`data=a,b`, read as the prompt task reads them,
seglab/data/prompt/), each turned into a simulated clip of `clip_frames` frames per epoch
(seglab/data/video/simulated_clips.py); model: seglab/models/video/ (memory_tracker); loss:
seglab/tasks/video/clip_loss.py. `init=` a click checkpoint (task prompt) starts the tracker's click part
from its weights and architecture (encoder, width); a memory-tracker checkpoint starts all of it.
best.pt is chosen on DAVIS J&F over simulated clips of the val images, tracked through `Tracker` exactly as
`seglab val task=video` tracks (seglab/tasks/video/clip_val.py); the re-prompt baseline with the `init`
click model and the tracker before training are scored on the same clips first, for comparison. The checkpoint records task "video",
backend "video_memory" and the click model's preprocess (so `Tracker(best.pt)` loads it).
"""

from __future__ import annotations

from pathlib import Path

import seglab
from seglab.config import Config, ConfigError
from seglab.data.prompt import dataset_roots
from seglab.data.video import davis
from seglab.data.video.simulated_clips import SimulatedClips, collate
from seglab.engine import distributed
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.device import Runtime
from seglab.engine.loop import fit
from seglab.engine.rng import seed_everything
from seglab.engine.run_folder import write_json
from seglab.engine.sinks import run_folder_sinks
from seglab.models import build_model, model_arguments
from seglab.prompt.click_backend import backend_from_checkpoint as click_backend
from seglab.prompt.memory_backend import MemoryBackend
from seglab.prompt.memory_backend import load as load_memory_tracker
from seglab.tasks.prompt.train import (
    OBJECT_CLASSES,
    RESIZE,
    UNSET,
    object_splits,
    training_size,
)
from seglab.tasks.training import (
    fit_options,
    loader_and_trainer,
    open_run_folder,
    resume_note,
    run_training,
    start_state,
)
from seglab.tasks.video.clip_loss import clip_batch_loss
from seglab.tasks.video.clip_val import clip_scores, val_clips

SELECTION_METRICS = {"j_and_f_mean": 1.0, "j_mean": 1.0, "f_mean": 1.0}
ROW = {"val_j_and_f": "j_and_f_mean", "val_j": "j_mean", "val_f": "f_mean"}
CLICK_ARCHITECTURE = ("encoder", "channels", "click_radius")  # what a click checkpoint fixes in the tracker
SCORES = ("j_and_f_mean", "j_mean", "f_mean", "j_recall", "j_decay")


def check_metric(cfg: Config) -> str:
    metric = cfg.metric or next(iter(SELECTION_METRICS))
    if metric not in SELECTION_METRICS:
        raise ConfigError(f"metric={cfg.metric!r}: video training selects best.pt by one of {', '.join(SELECTION_METRICS)}")
    return metric


def check_not_davis(cfg: Config) -> None:
    """A DAVIS folder is what the tracker is evaluated on: training reads still images with object masks."""
    for root in dataset_roots(cfg.data):
        if davis.matches(root):
            raise ConfigError(f"data={root}: a DAVIS folder, the evaluation set of `seglab val task=video`; the memory "
                              "tracker trains on clips simulated from still images with object masks (e.g. the Pet data)")


def initial_weights(cfg: Config) -> dict | None:
    if not cfg.init:
        return None
    ckpt = load_checkpoint(cfg.init)
    if ckpt.get("task") not in ("prompt", "video") or ckpt["arch"]["name"] not in ("click_seg", "memory_tracker"):
        raise ConfigError(f"init={cfg.init}: a {ckpt.get('task', 'semantic')!r} {ckpt['arch']['name']} checkpoint; "
                          "init takes a click model (click_seg, task prompt) or a memory tracker (task video)")
    return ckpt


def build_tracker(cfg: Config, init: dict | None):
    """(model, arch args): the architecture from the config, with what `init` fixes, and `init`'s weights."""
    options = {k: v for k, v in cfg.to_dict().items() if v not in UNSET}
    if init is not None:
        fixed = CLICK_ARCHITECTURE if init["arch"]["name"] == "click_seg" else tuple(init["arch"]["args"])
        options.update({k: v for k, v in init["arch"]["args"].items() if k in fixed and k != "num_classes"})
        options["encoder_weights"] = ""  # the weights come from init
    args = model_arguments(cfg.model, 1, options)
    model = build_model(cfg.model, args)
    if init is not None:
        target = model.click if init["arch"]["name"] == "click_seg" else model
        try:
            target.load_state_dict(init["model"])
        except RuntimeError as e:
            raise ConfigError(f"init={cfg.init}: its weights do not fit {cfg.model} {args} ({str(e)[:300]})") from None
    return model, args


def train(cfg: Config) -> Path:
    return run_training(cfg, check_metric, _train)


def _train(cfg: Config, ckpt, resumed_dir, group, device_name: str) -> Path:
    seed_everything(cfg.seed, cfg.deterministic)
    runtime = Runtime.from_config(device_name, cfg.precision, cfg.channels_last)
    size = training_size(cfg)
    check_not_davis(cfg)
    train_splits, val_splits = object_splits(cfg, "train"), object_splits(cfg, "val")
    init = initial_weights(cfg) if ckpt is None else None
    model, args = build_tracker(cfg, init)
    model = runtime.prepare_model(model)
    if size % model.multiple:
        raise ConfigError(f"imgsz={size}: {cfg.model} needs a multiple of {model.multiple}")
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": RESIZE, "size": size}
    meta = {"task": "video", "backend": "video_memory", "arch": {"name": cfg.model, "args": args},
            "classes": OBJECT_CLASSES, "preprocess": preprocess, "config": cfg.to_dict()}
    train_set = SimulatedClips(train_splits, size, frames=cfg.clip_frames, augment=cfg.augment)
    sampler, loader, trainer = loader_and_trainer(cfg, model, train_set, collate, runtime, preprocess, group,
                                                  clip_batch_loss)
    run_dir = open_run_folder(cfg, resumed_dir, group)
    state = start_state(trainer, ckpt)
    verbose = cfg.verbose and group.is_main
    clips = val_clips(val_splits, size, cfg.seed)
    if verbose:
        data = ", ".join(f"{s.root} ({s.format}, {len(s.images)} train images)" for s in train_splits)
        print(f"seglab {seglab.__version__} train (video): {cfg.model} {args} on {data}, clips of {cfg.clip_frames} "
              f"frames; {len(clips)} val clips of {len(clips[0][0]) if clips else 0} frames from the val images; size "
              f"{size}; init {cfg.init or '-'}; {runtime.describe()}; seed {cfg.seed}; "
              f"{resume_note(run_dir, state, ckpt is not None)}", flush=True)
    baseline = None
    if init is not None and init["arch"]["name"] == "click_seg" and group.is_main:
        baseline = _scores(clip_scores(click_backend(init, str(runtime.device), size), clips))
        if verbose:
            print(f"re-prompt baseline (the init click model) on the val clips: J&F {baseline['j_and_f_mean']:.4f}",
                  flush=True)
    opts = fit_options(cfg, verbose, SELECTION_METRICS)
    sinks = run_folder_sinks(run_dir, meta, cfg.save_every, verbose, curve="val_j_and_f") if group.is_main else []
    validate = clip_validator(clips, size, preprocess, runtime.device)
    untrained = validate(model)["dataset"] if init is not None and ckpt is None and group.is_main else None
    if verbose and untrained is not None:  # the click weights with the memory path still at zero
        print(f"memory tracker before training (init weights) on the val clips: J&F {untrained['j_and_f_mean']:.4f}",
              flush=True)
    state = fit(trainer, loader, sampler, validate, state, opts, OBJECT_CLASSES.names, group, sinks)
    if group.is_main:
        best = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
        scores = _scores(clip_scores(load_memory_tracker(best, device=str(runtime.device)), clips))
        history = {"epochs": len(state.history), "best_epoch": state.best_epoch, "train_seconds": state.elapsed}
        write_json(run_dir / "metrics.json", {"split": "val (simulated clips)", "clips": len(clips),
                                              "frames_per_clip": len(clips[0][0]) if clips else 0, **scores,
                                              "reprompt_baseline": baseline, "before_training": untrained, **history})
        if verbose:
            versus = f" (re-prompt baseline {baseline['j_and_f_mean']:.4f})" if baseline else ""
            print(f"\nbest.pt (epoch {state.best_epoch}) on the val clips: J&F {scores['j_and_f_mean']:.4f}{versus}\n"
                  f"trained {history['epochs']} epochs in {state.elapsed / 60:.1f} min\nrun folder: {run_dir.resolve()}")
    distributed.barrier(group)
    return run_dir


def _scores(result: dict) -> dict:
    return {k: result[k] for k in SCORES}


def clip_validator(clips: list, size: int, preprocess: dict, device):
    """`validate(model)`: J&F of the in-memory model's tracker on the val clips."""

    def validate(model) -> dict:
        was_training = model.training
        try:
            scores = _scores(clip_scores(MemoryBackend(model, size, preprocess["mean"], preprocess["std"], device), clips))
        finally:
            model.train(was_training)
        return {"dataset": scores, "loss": None, "row": {column: scores[key] for column, key in ROW.items()}}

    return validate
