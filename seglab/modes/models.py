"""`seglab models`: every registered model with its parameters and GFLOPs at 256x256, then the encoders.

Models are built with the config's model arguments (`encoder=`, `decoder_channels=`, `width=`, ...),
without fetching weights, on the meta device: nothing is allocated or computed, so the table is quick.
GFLOPs count a multiply-add as two operations (torch.utils.flop_counter), for one 3x256x256 image.
"""

from __future__ import annotations

import inspect

import torch
from torch.utils.flop_counter import FlopCounterMode

from seglab.config import Config
from seglab.encoders import ENCODERS, TIMM_PREFIX, build_encoder
from seglab.models import TASK_MODELS, build_model, model_arguments

SIZE = 256
NUM_CLASSES = 3


def measure(name: str, options: dict) -> dict:
    """{"params": M, "gflops": G at SIZE x SIZE (None when the forward cannot run on the meta device, as for
    detection models), "encoder": name} for one model, or {"error": text}."""
    args = model_arguments(name, NUM_CLASSES, options)
    try:
        with torch.device("meta"):
            model = build_model(name, args, pretrained=False).eval()
    except (KeyError, ValueError, RuntimeError, NotImplementedError) as e:
        return {"error": str(e.args[0] if e.args else e)[:120]}
    gflops = None
    try:
        with torch.device("meta"):
            x = torch.zeros(1, 3, SIZE, SIZE)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
        gflops = counter.get_total_flops() / 1e9
    except Exception:  # detection post-processing (NMS, sorting by score) has no meta-device kernels
        pass
    encoder = "-"
    if hasattr(model, "encoder"):
        encoder = args.get("encoder") or getattr(type(model), "default_encoder", "-")
    return {"params": sum(p.numel() for p in model.parameters()) / 1e6, "gflops": gflops, "encoder": encoder}


def describe(cls) -> str:
    """First line of the class docstring, else of its module's."""
    doc = cls.__doc__ or inspect.getmodule(cls).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def models(cfg: Config) -> list[dict]:
    # null keys (anchor_sizes, strides, ...) leave the constructor's default, as training does
    options = {**{k: v for k, v in cfg.to_dict().items() if v is not None}, "encoder_weights": ""}
    rows = []
    print(f"Models ({NUM_CLASSES} classes, one {SIZE}x{SIZE} image; `seglab train model=NAME encoder=NAME ...`)")
    print(f"  {'task':<10}{'model':<15}{'encoder':<22}{'params (M)':>11}{'GFLOPs':>9}  description")
    for task, registry in TASK_MODELS.items():
        for name, cls in registry.items():
            row = {"task": task, "model": name, **measure(name, options)}
            rows.append(row)
            if "error" in row:
                print(f"  {task:<10}{name:<15}{'-':<22}{'n/a':>11}{'n/a':>9}  {row['error']}")
            else:
                flops = f"{row['gflops']:>9.2f}" if row["gflops"] is not None else f"{'n/a':>9}"
                print(f"  {task:<10}{name:<15}{str(row['encoder']):<22}{row['params']:>11.2f}{flops}  {describe(cls)}")
    print(f"\nEncoders (`encoder=NAME`; any timm model as {TIMM_PREFIX}NAME; encoder_weights=imagenet|PATH)")
    print(f"  {'encoder':<22}{'params (M)':>11}  {'reductions':<18}{'channels':<28}imagenet weights")
    for name, spec in ENCODERS.items():
        with torch.device("meta"):
            enc = build_encoder(name)
        params = sum(p.numel() for p in enc.parameters()) / 1e6
        source = spec.imagenet.enum if hasattr(spec.imagenet, "enum") else (
            f"pip {spec.imagenet.requirement}" if spec.imagenet else "none declared")
        print(f"  {name:<22}{params:>11.2f}  {str(enc.reductions):<18}{str(enc.out_channels):<28}{source}")
    return rows
