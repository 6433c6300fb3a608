"""A SAM fine-tuned by `seglab train task=prompt model=sam` -> the official Sam as a SamBackend.

The checkpoint is a seglab one (task "prompt", arch `sam`, `"backend": "sam_finetuned"`) whose `model` holds
the trained prompt encoder + mask decoder (`prompt_encoder.*`, `mask_decoder.*`), `image_encoder` the frozen
encoder's weights as they came from the official file, and `sam_config` the architecture (the form of
seglab/prompt/sam_official.py's SAM_ARCHITECTURES). The three are joined into the official state dict and
loaded strictly, so `Predictor(best.pt)` runs exactly what an official SAM with these weights runs.
"""
from __future__ import annotations

from pathlib import Path

import torch

from seglab.engine.device import pick_device
from seglab.prompt.files import PromptCheckpointError, load_weights, read_checkpoint
from seglab.prompt.sam_official import SamBackend, architecture_name, build_sam

KIND = "sam_finetuned"  # the checkpoint's "backend" (seglab/prompt/loading.py BACKENDS)
ENCODER_PREFIX = "image_encoder."


def official_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """The official Sam state dict: the frozen encoder's weights + the fine-tuned decoder's."""
    encoder = {ENCODER_PREFIX + k: v for k, v in ckpt["image_encoder"].items()}
    return {**encoder, **ckpt["model"]}


def load(path: str | Path, device: str = "auto", **options) -> SamBackend:
    """BACKENDS["sam_finetuned"]: a fine-tuned SAM checkpoint -> SamBackend on `device`."""
    if options:
        raise TypeError(f"{path}: a fine-tuned SAM brings its own architecture; the loader takes device only, "
                        f"not {', '.join(options)}")
    path = Path(path)
    ckpt = read_checkpoint(path)
    missing = [k for k in ("model", "image_encoder", "sam_config") if k not in ckpt]
    if missing:
        raise PromptCheckpointError(f"{path}: not a fine-tuned SAM checkpoint (no {', '.join(missing)})")
    config = dict(ckpt["sam_config"])
    name = f"sam_{architecture_name(config)}_finetuned"
    model = build_sam(config)
    load_weights(model, official_state(ckpt), path, name)
    target = pick_device(device)
    return SamBackend(model.to(target), name, target)
