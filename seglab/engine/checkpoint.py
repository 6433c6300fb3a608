"""Checkpoints that carry everything needed to use them, written atomically, read without unpickling code.

Keys: seglab_version, arch {name, args}, classes {names, colors, ignore_index},
preprocess {mean, std, resize, size}, config, model (state dict), epoch, metrics, and for resuming
optimizer / scheduler states.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch
from torch import nn

import seglab
from seglab.data.spec import ClassTable
from seglab.models import build_model


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file."""


def atomic_save(obj, path: Path) -> None:
    """Write to a temporary file in the same folder, flush to disk, then rename over `path`.

    The temporary file is opened like any other (not with mkstemp, whose 0600 mode would make
    checkpoints unreadable to the rest of a group), so the umask decides the permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_checkpoint(model: nn.Module, arch: dict, classes: ClassTable, preprocess: dict, config: dict,
                    epoch: int, metrics: dict, **state) -> dict:
    return {
        "seglab_version": seglab.__version__,
        "arch": arch,
        "classes": classes.to_dict(),
        "preprocess": preprocess,
        "config": config,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "epoch": epoch,
        "metrics": metrics,
        **state,
    }


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"{path}: not a readable seglab checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a seglab checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    missing = [k for k in ("arch", "classes", "preprocess", "model") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a seglab checkpoint (missing {', '.join(missing)})")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    try:
        model = build_model(ckpt["arch"]["name"], ckpt["arch"]["args"], pretrained=False)  # weights come from ckpt
        model.load_state_dict(ckpt["model"])
    except (TypeError, RuntimeError) as e:
        raise CheckpointError(f"the checkpoint's weights do not fit its architecture {ckpt['arch']} "
                              f"({str(e)[:300]})") from None
    return model.eval()
