"""Predictor: a checkpoint (.pt), an exported model (.onnx) or an in-memory model applied to images,
with the checkpoint's own preprocessing. `seglab predict` writes what `Predictor.run` returns and
`seglab val` scores exactly that (seglab/inference/evaluate.py).

The checkpoint's `preprocess["resize"]` says how training pixels relate to source pixels, and every
mode honours it, so the model sees objects at the size training showed them:
- "stretch" (the default, also for checkpoints without the key): whole images stretched to the
  training size H x W. Every mode first resamples the image to that view (the decoder and resize of
  training, `load_image`); the probabilities are then resized (bilinear) back to the image's own
  size in row bands of bounded memory (seglab/inference/resample.py), whatever the image size.
  - stretch: the views of up to `batch` images go through the model together;
  - tile: the view is cut into tiles of `tile` pixels of the view (0 = the training size: one tile)
    and the tile probabilities blended (seglab/inference/tiling.py); one image at a time;
  - auto (default): stretch, but images whose longer side exceeds `auto_tile` x the training size
    take the one-at-a-time tile path, so a batch never holds several huge decoded images.
  With the default tile the two paths give the same labels up to float rounding.
- "crop" (patch training): the model saw `size` crops at native resolution, so the training scale is
  the image's own: tile slides over the image itself; auto means tile; stretch is refused (it would
  shrink objects by the image-to-crop ratio, a scale the model never saw).
`tile` is in pixels at the training scale. With `tta`, each forward pass becomes the mean softmax
over horizontal flip x `scales`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from seglab.data.dataset import load_image
from seglab.data.io import read_image
from seglab.data.size import as_hw, size_text
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.models.source import require, resolve_model
from seglab.engine.device import Runtime, normalize
from seglab.inference.backends import OnnxBackend, TorchBackend
from seglab.inference.resample import resized_bands
from seglab.inference.tiling import BLENDS, TileStats, assemble, tiled_bands
from seglab.inference.tta import DEFAULT_SCALES, augmented_probs, parse_scales

MODES = ("auto", "stretch", "tile")
# preprocess["resize"] -> does the model see pixels at the image's own (native) resolution?
NATIVE_SCALE = {"stretch": False, "crop": True}


def training_scale(preprocess: dict, where: str = "the checkpoint") -> str:
    """The resize policy a checkpoint's preprocess records: "stretch" (also when absent) or "crop"."""
    resize = preprocess.get("resize") or "stretch"
    if resize not in NATIVE_SCALE:
        raise ValueError(f"{where}: preprocess resize={resize!r} is not one seglab knows "
                         f"({', '.join(NATIVE_SCALE)}); it was written by a newer seglab?")
    return resize


def labels_at_size(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """scores [C, h, w] -> class ids [H, W] at `size` (H, W), resized in row bands as predict does."""
    height, width = size
    return torch.from_numpy(assemble(resized_bands(scores, (height, width)), height, width)).long()


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

    @classmethod
    def from_file(cls, path: str | Path) -> "Job":
        """The job `predict` and `val` both make for an image file (DataError when it cannot be read)."""
        return cls(np.asarray(read_image(path)), Path(path))


class Predictor:
    """`model`: a .pt or .onnx path, or an nn.Module with `metadata` = the checkpoint's {classes,
    preprocess} (training-time validation). An in-memory model is put in eval mode (and, with
    fuse=True, copied with its BatchNorms folded); the caller restores train mode."""

    def __init__(self, model: str | Path | nn.Module, runtime: Runtime | None = None,
                 options: InferenceOptions | None = None, compile: bool = False, threads: int = 0,
                 fuse: bool = True, metadata: dict | None = None):
        if threads > 0:
            torch.set_num_threads(threads)
        self.options = options or InferenceOptions()
        if isinstance(model, nn.Module):
            if metadata is None or not {"classes", "preprocess"} <= set(metadata):
                raise ValueError("Predictor(model=nn.Module) needs metadata={'classes': ..., 'preprocess': ...}, "
                                 "as a checkpoint holds them")
            self._use_module(model, metadata, runtime, fuse, compile)
            where = "the in-memory model"
        else:
            source = require(resolve_model(model), "a predictor", ("checkpoint", "onnx"))
            self._load(source.path, runtime, threads, fuse, compile)
            where = source.name
        classes = self.checkpoint["classes"]
        self.classes = classes if isinstance(classes, ClassTable) else ClassTable.from_dict(classes)
        self.preprocess = self.checkpoint["preprocess"]
        self.train_size = as_hw(self.preprocess["size"])  # (H, W)
        self.size = max(self.train_size)  # the scalar training size: the auto_tile threshold
        self.scale = training_scale(self.preprocess, where)
        self.native = NATIVE_SCALE[self.scale]
        if self.native and self.options.mode == "stretch":
            raise ValueError(f"{where} was trained on {size_text(self.train_size)} crops at native resolution "
                             "(preprocess resize=crop): mode=stretch would shrink each image to the crop size, "
                             "a scale the model never saw; use mode=tile or mode=auto (both tile at native "
                             "resolution)")

    def _use_module(self, model: nn.Module, metadata: dict, runtime: Runtime | None, fuse: bool, compile: bool):
        self.checkpoint = metadata
        self.runtime = runtime or Runtime.from_config("auto", "auto", True)
        self.backend = TorchBackend(model, self.runtime, fuse, compile)
        self.model = self.backend.model

    def _load(self, path: Path, runtime: Runtime | None, threads: int, fuse: bool, compile: bool):
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
            checkpoint = load_checkpoint(path)
            self._use_module(model_from_checkpoint(checkpoint), checkpoint, runtime, fuse, compile)

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    @property
    def tile(self) -> tuple[int, int]:
        """Tile height and width in pixels at the training scale (`tile`, or the training size)."""
        return as_hw(self.options.tile) if self.options.tile else self.train_size

    def describe(self) -> str:
        opts = self.options
        what = f"mode={opts.mode}" + (f" tile={size_text(self.tile)} overlap={opts.overlap} blend={opts.blend}"
                                      if opts.mode != "stretch" else "")
        tta = f" tta=flip x scales {list(opts.scales)}" if opts.tta else ""
        where = self.backend.name if self.model is None else self.runtime.describe()
        scale = (f"{size_text(self.train_size)} crops at native resolution" if self.native
                 else f"images stretched to {size_text(self.train_size)}")
        return f"{where}, {what}{tta}, trained on {scale}"

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
        """stretch (batched with other images) or tile (one at a time) for an image of this size."""
        if self.native:
            return "tile"
        mode = self.options.mode
        if mode == "auto":
            mode = "tile" if max(height, width) > self.options.auto_tile * self.size else "stretch"
        return mode

    def run(self, jobs: list[Job]) -> list[np.ndarray]:
        """Class ids uint8 [H, W] per job; stretch-mode images go through the model in batches."""
        labels: list[np.ndarray | None] = [None] * len(jobs)
        batched = []
        for i, job in enumerate(jobs):
            if self.mode_for(*job.image.shape[:2]) == "stretch":
                batched.append(i)
            else:
                labels[i] = self._tiled(job)
        for start in range(0, len(batched), self.options.batch):
            chunk = batched[start:start + self.options.batch]
            probs = self.probs(torch.from_numpy(np.stack([self.training_view(jobs[i]) for i in chunk])))
            for i, image_probs in zip(chunk, probs.float().cpu()):
                labels[i] = self._at_image_size(image_probs, jobs[i])
        return labels

    def training_view(self, job: Job) -> np.ndarray:
        """A stretch model's view of the image, uint8 [3, H, W] at the training size, decoded as in training."""
        if job.source is not None:
            return load_image(job.source, self.train_size)
        height, width = self.train_size
        image = Image.fromarray(job.image).resize((width, height), Image.BILINEAR)
        return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))

    def _at_image_size(self, probs: torch.Tensor, job: Job) -> np.ndarray:
        height, width = job.image.shape[:2]
        return assemble(resized_bands(probs, (height, width)), height, width, job.probs_out)

    def _tile_bands(self, image: torch.Tensor, stats: TileStats):
        opts = self.options
        return tiled_bands(image, self.probs, self.num_classes, self.tile, opts.overlap, opts.blend, opts.batch, stats)

    def _tiled(self, job: Job) -> np.ndarray:
        height, width = job.image.shape[:2]
        if not self.native:  # tile the training-scale view, then resize its probabilities back
            view = torch.from_numpy(self.training_view(job))
            probs = torch.cat([band for _, band in self._tile_bands(view, job.stats)], 1)
            return self._at_image_size(probs, job)
        with warnings.catch_warnings():  # PIL's arrays are read-only; tiles are only read, never written
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            image = torch.from_numpy(job.image).permute(2, 0, 1)
        return assemble(self._tile_bands(image, job.stats), height, width, job.probs_out)

    def predict_files(self, paths: list[Path]) -> list[np.ndarray]:
        """Class ids (uint8 [H, W] at each image's own size) for a batch of image files."""
        return self.run([Job.from_file(p) for p in paths])
