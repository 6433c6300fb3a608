"""Checkpoint file -> promptable backend: the `BACKENDS` registry and how a file's kind is recognised.

    BACKENDS[kind](path, device="auto", **options) -> PromptBackend

Kinds (a loader per kind; add yours with a one-line edit):
- "sam":  an official segment-anything / MobileSAM state dict (`sam_vit_b_01ec64.pth`, `mobile_sam.pt`);
          options `model_type` ("vit_b" / "vit_l" / "vit_h" / "vit_t", read from the weights when not
          given) or `config` (a reduced architecture, see seglab/prompt/sam_official.py).
- "sam2": an official SAM 2.1 checkpoint (`{"model": state_dict}`, `sam2.1_hiera_tiny.pt`); options
          `model_type` ("sam2.1_hiera_t" / "_s" / "_b+" / "_l", read from the weights when not given).
- "click": a seglab checkpoint with `"task": "prompt"` (seglab's click model; PR-CLICK's loader).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from seglab.prompt import sam2_official, sam_finetuned, sam_official
from seglab.prompt.files import PromptCheckpointError, read_checkpoint


def _load_memory_tracker(path: Path, device: str = "auto", **options):
    from seglab.prompt.memory_backend import load  # the click model with a memory (seglab/models/video/)

    return load(path, device=device, **options)


def _load_click(path: Path, device: str = "auto", **options):
    from seglab.prompt.click_backend import load  # seglab's own click model (seglab/prompt/click_backend.py)

    return load(path, device=device, **options)


BACKENDS: dict[str, Callable] = {
    "sam": sam_official.load,
    "sam2": sam2_official.load,
    "click": _load_click,
    "sam_finetuned": sam_finetuned.load,  # `seglab train task=prompt model=sam` (seglab/prompt/sam_finetuned.py)
    "video_memory": _load_memory_tracker,  # `seglab train task=video` (seglab/prompt/memory_backend.py)
}
PROMPTABLE_TASKS = ("prompt", "video")  # seglab checkpoints a backend loads (video: the memory tracker)


def checkpoint_kind(path: str | Path, options: dict | None = None) -> str:
    """The BACKENDS kind of a checkpoint file, recognised from its contents."""
    obj = read_checkpoint(path)
    if isinstance(obj, dict) and "arch" in obj and "model" in obj:  # a seglab checkpoint
        task = obj.get("task", "semantic")
        if task not in PROMPTABLE_TASKS:
            raise PromptCheckpointError(f"{path}: a seglab {task!r} checkpoint, not a promptable one "
                                        f"(task 'prompt'); use seglab predict / val for it")
        return obj.get("backend", "click")  # a checkpoint may name its backend (a fine-tuned SAM does)
    state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if isinstance(state, dict):
        for kind, module in (("sam2", sam2_official), ("sam", sam_official)):
            if module.looks_like(state):
                return kind
    raise PromptCheckpointError(f"{path}: not a SAM, SAM 2 or seglab prompt checkpoint (its keys look like "
                                f"none of them); pass kind= one of {', '.join(sorted(BACKENDS))} if it is one")
