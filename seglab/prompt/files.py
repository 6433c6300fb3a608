"""Reading promptable checkpoints and importing the optional official packages, with clear errors."""
from __future__ import annotations

import importlib
from pathlib import Path

import torch

# module -> (PyPI package, seglab extra): what to install when an official backend's package is missing
EXTRAS = {
    "segment_anything": ("segment-anything", "sam"),
    "mobile_sam": ("mobilesam-mirror", "mobile_sam"),
    "sam2": ("sam2", "sam2"),
}


class PromptCheckpointError(ValueError):
    """A checkpoint file that cannot be used as a promptable model; the message names the file."""


def require(module: str, what: str):
    """Import an optional package, or say which seglab extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package, extra = EXTRAS[module.split(".")[0]]
        raise ImportError(f"{what} needs the {package!r} package ({e}): pip install 'seglab[{extra}]'") from None


def read_checkpoint(path: str | Path, mmap: bool = True):
    """torch.load(weights_only=True, on the CPU) with errors that name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise PromptCheckpointError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise PromptCheckpointError(f"{path}: the file is empty (an interrupted download?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 (torch raises many types for truncated or foreign files)
        hint = "truncated (an interrupted download?) or not a PyTorch checkpoint"
        raise PromptCheckpointError(f"{path}: cannot be read: {hint} ({type(e).__name__}: {str(e)[:160]})") from None


def load_weights(model: torch.nn.Module, state: dict, path: Path, name: str) -> None:
    """Strict load_state_dict whose error names the file, the architecture and the mismatched keys."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PromptCheckpointError(f"{path}: not a state dict of tensors, cannot load it into {name}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and own[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})" for label, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("keys of another shape", shapes))
                 if keys]
        raise PromptCheckpointError(f"{path}: the weights do not fit {name}: " + "; ".join(parts))
    model.load_state_dict(state)
