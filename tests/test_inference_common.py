"""Shared by the inference tests: one tiny checkpoint trained once per session, and small helpers.

(A module, not conftest.py, so the inference tests stay in files of their own; it holds no tests.)
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.cli import main


@functools.cache
def tiny_checkpoint() -> Path:
    """best.pt of a 1-epoch U-Net (width 4, depth 2, 32x32) on the bundled sample: ~5 s on 2 cores."""
    project = Path(tempfile.mkdtemp(prefix="seglab_inference_"))
    atexit.register(shutil.rmtree, project, ignore_errors=True)
    args = ["train", "epochs=1", "width=4", "depth=2", "imgsz=32", f"project={project}", "samples=0",
            "verbose=false", "name=tiny"]
    assert main(args) == 0
    return project / "tiny" / "best.pt"


def smooth_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB uint8 image: smooth blobs (so a model's labels form regions, not noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC))


def save_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
