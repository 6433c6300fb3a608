"""`seglab train task=prompt model=sam sam_checkpoint=sam_vit_b_01ec64.pth`: SAM's mask decoder fine-tuned on a dataset.

The official weights come in through seglab/prompt/sam_official.py (architecture from `sam_type` or the
weights). The image encoder is frozen: each image is embedded once (sam_embeddings.py, in RAM or on disk
with `embedding_cache=disk`) and every epoch trains on the cached embeddings; the prompt encoder is frozen
unless `train_prompt_encoder=true`; the mask decoder (with its IoU head) trains with simulated prompts
and SAM's loss (sam_loss.py). The loop is the engine's (`fit`, the run folder's sinks); best.pt is chosen,
as for the click model, on the val click benchmark (NoC@90 by default) through `seglab.prompt.Predictor`.

Checkpoints are seglab checkpoints (task "prompt", arch `sam` = seglab/models/prompt/sam_decoder.py) that
also carry the frozen encoder (`image_encoder`), its architecture (`sam_config`) and `"backend":
"sam_finetuned"`, so `Predictor(best.pt)`, `seglab val task=prompt model=best.pt` and `seglab export` load
the whole official SAM from it (seglab/prompt/sam_finetuned.py). Images are not augmented (the embeddings
are of the images as they are); the input is SAM's own (longer side 1024), so `imgsz` does not apply.
"""

from __future__ import annotations

from pathlib import Path

import seglab
from seglab.config import Config, ConfigError
from seglab.data.prompt import ObjectDataset, collate
from seglab.engine.device import Runtime
from seglab.engine.loop import fit
from seglab.engine.rng import seed_everything
from seglab.engine.run_folder import write_json
from seglab.engine.sinks import run_folder_sinks
from seglab.models import build_model, model_arguments
from seglab.prompt import sam_finetuned, sam_official
from seglab.prompt.backend import LOW_RES
from seglab.prompt.predictor import Predictor
from seglab.tasks.prompt.evaluate import combined, evaluate_split, format_table
from seglab.tasks.prompt.sam_embeddings import (
    CachedEncoder,
    EmbeddedObjects,
    EmbeddingCache,
)
from seglab.tasks.prompt.sam_loss import sam_batch_loss
from seglab.tasks.prompt.train import (
    OBJECT_CLASSES,
    RESIZE,
    ROW,
    SELECTION_METRICS,
    UNSET,
    object_splits,
    selection_data,
)
from seglab.tasks.training import (
    fit_options,
    loader_and_trainer,
    open_run_folder,
    resume_note,
    start_state,
)

DECODER_PARTS = ("prompt_encoder.", "mask_decoder.")


def official_sam(cfg: Config, runtime: Runtime) -> tuple[sam_official.SamBackend, dict]:
    """The official SAM of `sam_checkpoint` on the device, frozen, and its architecture config."""
    if not cfg.sam_checkpoint:
        raise ConfigError("model=sam: give sam_checkpoint=PATH, the official SAM / MobileSAM weights to fine-tune "
                          "(e.g. sam_vit_b_01ec64.pth)")
    if not Path(cfg.sam_checkpoint).is_file():
        raise ConfigError(f"sam_checkpoint={cfg.sam_checkpoint}: file not found")
    backend = sam_official.load(cfg.sam_checkpoint, device=str(runtime.device), model_type=cfg.sam_type or None)
    sam = backend.model.eval().requires_grad_(False)
    config = (dict(sam_official.SAM_ARCHITECTURES[cfg.sam_type]) if cfg.sam_type
              else sam_official.config_from_weights(sam.state_dict()))
    return backend, config


def trainable_decoder(cfg: Config, sam, runtime: Runtime):
    """The `sam` architecture with the official decoder's weights; it replaces the decoder inside `sam`, so the
    backend decodes with the weights being trained. Only the mask decoder (and the prompt encoder if asked) train."""
    options = {k: v for k, v in cfg.to_dict().items() if v not in UNSET}
    args = model_arguments(cfg.model, 1, options)
    decoder = build_model(cfg.model, args)
    decoder.load_state_dict({k: v for k, v in sam.state_dict().items() if k.startswith(DECODER_PARTS)})
    decoder = decoder.to(runtime.device).requires_grad_(False)
    decoder.mask_decoder.requires_grad_(True)
    decoder.prompt_encoder.requires_grad_(cfg.train_prompt_encoder)
    sam.prompt_encoder, sam.mask_decoder = decoder.prompt_encoder, decoder.mask_decoder
    return decoder, args


def sam_validator(val_splits: list, backend: sam_official.SamBackend, cache: EmbeddingCache, max_clicks: int,
                  per_image: int):
    """`validate(decoder)`: the click benchmark with `decoder` (the trained one, or its EMA) inside the SAM."""
    sam = backend.model

    def validate(decoder) -> dict:
        trained = sam.prompt_encoder, sam.mask_decoder
        was_training = decoder.training
        sam.prompt_encoder, sam.mask_decoder = decoder.prompt_encoder, decoder.mask_decoder
        try:
            decoder.eval()
            predictor = Predictor(CachedEncoder(backend, cache))
            results = [evaluate_split(predictor, split, max_clicks, per_image) for split in val_splits]
        finally:
            sam.prompt_encoder, sam.mask_decoder = trained
            decoder.train(was_training)
        metrics = combined(results)
        return {"dataset": metrics, "loss": None, "row": {column: metrics[key] for column, key in ROW.items()}}

    return validate


def fit_sam(cfg: Config, ckpt, resumed_dir, group, device_name: str) -> Path:
    """The SAM fine-tuning run (called by seglab/tasks/prompt/train.py for model=sam)."""
    if group.active:
        raise ConfigError("model=sam: SAM fine-tuning runs in one process (not under torchrun)")
    seed_everything(cfg.seed, cfg.deterministic)
    runtime = Runtime.from_config(device_name, cfg.precision, cfg.channels_last)
    backend, sam_config = official_sam(cfg, runtime)
    decoder, args = trainable_decoder(cfg, backend.model, runtime)
    train_splits, val_splits = object_splits(cfg, "train"), object_splits(cfg, "val", data=selection_data(cfg))
    preprocess = {"mean": [m / 255 for m in sam_official.PIXEL_MEAN], "std": [s / 255 for s in sam_official.PIXEL_STD],
                  "resize": RESIZE, "size": sam_official.IMAGE_SIZE}
    encoder = {k: v.detach().cpu() for k, v in backend.model.image_encoder.state_dict().items()}
    meta = {"task": "prompt", "backend": sam_finetuned.KIND, "arch": {"name": cfg.model, "args": args},
            "classes": OBJECT_CLASSES, "preprocess": preprocess, "config": cfg.to_dict(), "sam_config": sam_config,
            "image_encoder": encoder}
    run_dir = open_run_folder(cfg, resumed_dir, group)
    verbose = cfg.verbose and group.is_main
    cache = EmbeddingCache(backend, run_dir / "embeddings" if cfg.embedding_cache == "disk" else None)
    if verbose:
        trained = "prompt encoder + mask decoder" if cfg.train_prompt_encoder else "mask decoder"
        print(f"seglab {seglab.__version__} train (prompt): SAM {backend.name} from {cfg.sam_checkpoint}, {trained} "
              f"trained, image encoder frozen; embedding {sum(len(s.images) for s in train_splits)} train images "
              f"once ({cfg.embedding_cache})...", flush=True)
    train_set = EmbeddedObjects(ObjectDataset(train_splits, LOW_RES, augment=False), cache, verbose)
    sampler, loader, trainer = loader_and_trainer(cfg, decoder, train_set, collate, runtime, preprocess, group,
                                                  sam_batch_loss)
    state = start_state(trainer, ckpt)
    if verbose:
        print(f"{len(train_set)} train, {sum(len(s.images) for s in val_splits)} val images; input "
              f"{sam_official.IMAGE_SIZE} (SAM's), loss at {LOW_RES}x{LOW_RES}, no augmentation; {runtime.describe()}; "
              f"seed {cfg.seed}; {resume_note(run_dir, state, ckpt is not None)}", flush=True)
    opts = fit_options(cfg, verbose, SELECTION_METRICS)
    sinks = run_folder_sinks(run_dir, meta, cfg.save_every, verbose, curve="val_noc_90")
    validate = sam_validator(val_splits, backend, cache, cfg.max_clicks, cfg.objects_per_image)
    state = fit(trainer, loader, sampler, validate, state, opts, OBJECT_CLASSES.names, group, sinks)
    best = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    predictor = Predictor(CachedEncoder(sam_finetuned.load(best, device=str(runtime.device)), cache))
    results = [evaluate_split(predictor, split, cfg.max_clicks, cfg.objects_per_image) for split in val_splits]
    history = {"epochs": len(state.history), "best_epoch": state.best_epoch, "train_seconds": state.elapsed}
    write_json(run_dir / "metrics.json", {"split": "val", "inference": predictor.backend.name,
                                          **combined(results), "datasets": results, **history})
    if verbose:
        print(f"\nbest.pt (epoch {state.best_epoch}) on val, at each image's own size:\n{format_table(results)}\n"
              f"trained {history['epochs']} epochs in {state.elapsed / 60:.1f} min\nrun folder: {run_dir.resolve()}")
    return run_dir
