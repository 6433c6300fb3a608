"""Predictor: a checkpoint (.pt) or an exported model (.onnx) applied to images, with its own preprocessing.

Two ways to fit an image to the model (`mode`):
- stretch: the image is stretched to the training size, as in training, and the scores are resized
  (bilinear) back to the image's own size before the argmax: what `val` scores by default.
- tile: the image is cut into overlapping tiles of `tile` pixels at its own resolution and the tile
  probabilities are blended (seglab/inference/tiling.py), in bounded memory.
- auto (default): stretch, unless the image's longer side exceeds `auto_tile` x the training size,
  i.e. stretching would shrink it more than that: then tile.
With `tta`, each forward pass becomes the mean softmax over horizontal flip x `scales`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from seglab.data.dataset import load_image
from seglab.data.io import DataError, read_image
from seglab.data.size import as_hw, size_text
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.engine.device import Runtime, normalize
from seglab.inference.backends import OnnxBackend, TorchBackend
from seglab.inference.tiling import BLENDS, TileStats, assemble, tiled_bands
from seglab.inference.tta import DEFAULT_SCALES, augmented_probs, parse_scales

MODES = ("auto", "stretch", "tile")
STRETCH_MAX_PIXELS = 25_000_000  # stretch resizes full-size scores [C, H, W] in one piece


class InputTooLarge(DataError):
    """An image that the chosen mode cannot predict; the message says which mode can."""


def labels_at_size(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """logits [C, h, w] -> class ids [H, W] at `size` (H, W)."""
    return resize_scores(logits, size).argmax(0)


def resize_scores(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    scores = scores.float()
    if tuple(scores.shape[-2:]) != tuple(size):
        scores = F.interpolate(scores[None], size=tuple(size), mode="bilinear", align_corners=False)[0]
    return scores


@dataclass
class InferenceOptions:
    mode: str = "auto"
    auto_tile: float = 8.0
    tile: int = 0  # 0 = the training size
    overlap: float = 0.25
    blend: str = "gaussian"
    tta: bool = False
    scales: tuple = DEFAULT_SCALES
    batch: int = 8

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}: expected one of {', '.join(MODES)}")
        if self.blend not in BLENDS:
            raise ValueError(f"blend={self.blend!r}: expected one of {', '.join(BLENDS)}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap={self.overlap}: expected a fraction in [0, 1), e.g. 0.25")
        if self.tile < 0 or self.auto_tile <= 0:
            raise ValueError("tile must be >= 0 (0 = the training size) and auto_tile > 0")
        self.scales = parse_scales(self.scales)

    @classmethod
    def from_config(cls, cfg) -> "InferenceOptions":
        return cls(cfg.mode, cfg.auto_tile, cfg.tile, cfg.overlap, cfg.blend, cfg.tta, cfg.scales, cfg.batch)


@dataclass
class Job:
    """One image to predict: uint8 RGB [H, W, 3]; `source` is its file (the stretched input is then
    decoded from it exactly as in training); `probs_out` [C, H, W] receives the probabilities."""

    image: np.ndarray
    source: Path | None = None
    probs_out: np.ndarray | None = None
    stats: TileStats = field(default_factory=TileStats)


class Predictor:
    def __init__(self, model: str | Path, runtime: Runtime | None = None, options: InferenceOptions | None = None,
                 compile: bool = False, threads: int = 0, fuse: bool = True):
        if threads > 0:
            torch.set_num_threads(threads)
        self.options = options or InferenceOptions()
        path = Path(model)
        if path.suffix.lower() == ".onnx":
            if not path.is_file():
                raise FileNotFoundError(f"{path}: ONNX file not found")
            self.runtime = Runtime(torch.device("cpu"), "fp32", False)
            self.backend = OnnxBackend(path, threads)
            self.checkpoint = self.backend.metadata
            missing = [k for k in ("classes", "preprocess") if k not in self.checkpoint]
            if missing:
                raise ValueError(f"{path}: not a seglab ONNX export (metadata lacks {', '.join(missing)}); "
                                 "export with `seglab export model=CHECKPOINT.pt format=onnx`")
            self.model = None
        else:
            self.checkpoint = load_checkpoint(path)
            self.runtime = runtime or Runtime.from_config("auto", "auto", True)
            self.backend = TorchBackend(model_from_checkpoint(self.checkpoint), self.runtime, fuse, compile)
            self.model = self.backend.model
        self.classes = ClassTable.from_dict(self.checkpoint["classes"])
        self.preprocess = self.checkpoint["preprocess"]
        self.train_size = as_hw(self.preprocess["size"])  # (H, W)
        self.size = max(self.train_size)  # the scalar training size: default tile, auto_tile threshold

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    def describe(self) -> str:
        opts = self.options
        what = f"mode={opts.mode}" + (f" tile={opts.tile or self.size} overlap={opts.overlap} blend={opts.blend}"
                                      if opts.mode != "stretch" else "")
        tta = f" tta=flip x scales {list(opts.scales)}" if opts.tta else ""
        where = self.backend.name if self.model is None else self.runtime.describe()
        return f"{where}, {what}{tta}, training size {size_text(self.train_size)}"

    # -- the forward pass on uint8 batches -------------------------------------------------------
    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, h, w] -> float logits [N, C, h, w]."""
        return self.backend(self._normalize(images))

    @torch.no_grad()
    def scores(self, images: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """(logits, False), or with TTA (mean probabilities, True), for uint8 [N, 3, h, w]."""
        if not self.options.tta:
            return self.logits(images), False
        return augmented_probs(self.backend, self._normalize(images), True, self.options.scales), True

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        scores, are_probs = self.scores(images)
        return scores if are_probs else scores.softmax(1)

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        return normalize(images, self.preprocess["mean"], self.preprocess["std"], self.runtime)

    # -- whole images ------------------------------------------------------------------------------
    def mode_for(self, height: int, width: int) -> str:
        """stretch or tile for an image of this size; InputTooLarge when the chosen mode cannot take it."""
        mode = self.options.mode
        if mode == "auto":
            mode = "tile" if max(height, width) > self.options.auto_tile * self.size else "stretch"
        if mode == "stretch" and height * width > STRETCH_MAX_PIXELS:
            raise InputTooLarge(f"{width}x{height} image ({height * width / 1e6:.0f} MP) is too large for "
                                f"mode=stretch (at most {STRETCH_MAX_PIXELS / 1e6:.0f} MP); use mode=tile or mode=auto")
        return mode

    def run(self, jobs: list[Job]) -> list[np.ndarray]:
        """Class ids uint8 [H, W] per job; stretched images go through the model in batches."""
        labels: list[np.ndarray | None] = [None] * len(jobs)
        stretch = []
        for i, job in enumerate(jobs):
            if self.mode_for(*job.image.shape[:2]) == "stretch":
                stretch.append(i)
            else:
                labels[i] = self._tiled(job)
        for start in range(0, len(stretch), self.options.batch):
            chunk = stretch[start:start + self.options.batch]
            batch = torch.from_numpy(np.stack([self._stretched(jobs[i]) for i in chunk]))
            scores, are_probs = self.scores(batch)
            for i, image_scores in zip(chunk, scores):
                labels[i] = self._finish_stretch(image_scores, are_probs, jobs[i])
        return labels

    def _stretched(self, job: Job) -> np.ndarray:
        if job.source is not None:
            return load_image(job.source, self.train_size)
        height, width = self.train_size
        image = Image.fromarray(job.image).resize((width, height), Image.BILINEAR)
        return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))

    def _finish_stretch(self, scores: torch.Tensor, are_probs: bool, job: Job) -> np.ndarray:
        full = resize_scores(scores.cpu(), job.image.shape[:2])
        if job.probs_out is not None:
            job.probs_out[...] = (full if are_probs else full.softmax(0)).numpy().astype(job.probs_out.dtype)
        return full.argmax(0).to(torch.uint8).numpy()

    def _tiled(self, job: Job) -> np.ndarray:
        opts = self.options
        height, width = job.image.shape[:2]
        with warnings.catch_warnings():  # PIL's arrays are read-only; tiles are only read, never written
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            image = torch.from_numpy(job.image).permute(2, 0, 1)
        bands = tiled_bands(image, self.probs, self.num_classes, opts.tile or self.size, opts.overlap,
                            opts.blend, opts.batch, job.stats)
        return assemble(bands, height, width, job.probs_out)

    def predict_files(self, paths: list[Path]) -> list[np.ndarray]:
        """Class ids (uint8 [H, W] at each image's own size) for a batch of image files."""
        return self.run([Job(np.asarray(read_image(p)), Path(p)) for p in paths])
