"""`Predictor`: segment_anything.SamPredictor's API over any promptable backend (seglab/prompt/backend.py).

    predictor = Predictor("sam_vit_b_01ec64.pth", model_type="vit_b")   # or a backend, or a seglab checkpoint
    predictor.set_image(rgb_uint8)                     # heavy encoder once; the embedding is cached
    masks, scores, low_res = predictor.predict(point_coords=[[x, y]], point_labels=[1])
    masks, scores, low_res = predictor.predict(mask_input=low_res[[scores.argmax()]], ...)  # feed back
    masks, scores, low_res = predictor.predict_batch(boxes=[[x0, y0, x1, y1], ...])      # B prompts at once

`predict` takes and returns what SamPredictor's does (numpy; point_coords [N, 2], point_labels [N],
box [4], mask_input [1, 256, 256]) -> masks bool [C, H, W] (logits when return_logits), scores [C],
low_res logits [C, 256, 256]. `predict_batch` is the batched form: point_coords [B, N, 2] /
point_labels [B, N] / boxes [B, 4] / mask_input [B, 1, 256, 256] -> [B, C, H, W], [B, C], [B, C, 256, 256].
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seglab.prompt.backend import MASK_THRESHOLD, PromptBackend, check_image, check_prompts
from seglab.prompt.loading import BACKENDS, checkpoint_kind


class Predictor:
    """SamPredictor's shape over a `PromptBackend`.

    `model`: a backend object, or a checkpoint path whose kind is read from the file (see
    `seglab.prompt.loading.BACKENDS`; `kind=` overrides). `options` go to the loader (e.g.
    `model_type="vit_b"` for an official SAM .pth, `config=` for SAM 2). `device`: "auto", "cpu", "cuda".
    """

    def __init__(self, model: PromptBackend | str | Path, *, kind: str | None = None, device: str = "auto",
                 **options):
        if isinstance(model, (str, Path)):
            model = load_backend(model, kind=kind, device=device, **options)
        elif options or kind is not None:
            raise ValueError("kind= and loader options apply only when `model` is a checkpoint path")
        if not isinstance(model, PromptBackend):
            raise TypeError(f"model must be a PromptBackend (embed + decode + name + device) or a checkpoint "
                            f"path, got {type(model).__name__}")
        self.backend = model
        self.reset_image()

    # --- image -------------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Run the backend's encoder once on a uint8 [H, W, 3] image and keep its embedding."""
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
        image = check_image(image)
        if image_format == "BGR":
            image = np.ascontiguousarray(image[..., ::-1])
        self.reset_image()
        with torch.inference_mode():
            self.embedding = self.backend.embed(image)
        self.original_size = image.shape[:2]
        self.is_image_set = True

    def reset_image(self) -> None:
        self.embedding: Any = None
        self.original_size: tuple[int, int] | None = None
        self.is_image_set = False

    def get_image_embedding(self) -> Any:
        self._require_image()
        return self.embedding

    @property
    def device(self) -> torch.device:
        return self.backend.device

    # --- prompts -----------------------------------------------------------------------------------
    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True, return_logits: bool = False):
        """One prompt (SamPredictor.predict) -> masks [C, H, W], scores [C], low_res [C, 256, 256] (numpy)."""
        points = None if point_coords is None else _array(point_coords, np.float32, "point_coords")[None]
        labels = None if point_labels is None else _array(point_labels, np.int64, "point_labels")[None]
        boxes = None if box is None else _array(box, np.float32, "box").reshape(1, -1)
        masks = None if mask_input is None else _array(mask_input, np.float32, "mask_input")[None]
        out = self.predict_batch(points, labels, boxes, masks, multimask_output, return_logits)
        return tuple(x[0] for x in out)

    def predict_batch(self, point_coords=None, point_labels=None, boxes=None, mask_input=None,
                      multimask_output: bool = True, return_logits: bool = False):
        """B prompts on the cached image in one decode -> [B, C, H, W], [B, C], [B, C, 256, 256] (numpy)."""
        masks, scores, low_res = self.predict_torch(
            *(None if x is None else torch.as_tensor(_array(x, dtype, name))
              for x, dtype, name in ((point_coords, np.float32, "point_coords"),
                                     (point_labels, np.int64, "point_labels"),
                                     (boxes, np.float32, "boxes"), (mask_input, np.float32, "mask_input"))),
            multimask_output=multimask_output, return_logits=return_logits)
        return masks.cpu().numpy(), scores.float().cpu().numpy(), low_res.float().cpu().numpy()

    def predict_torch(self, point_coords=None, point_labels=None, boxes=None, mask_input=None,
                      multimask_output: bool = True, return_logits: bool = False):
        """Torch form of predict_batch (tensors in original-image pixels; results stay on the device)."""
        self._require_image()
        check_prompts(point_coords, point_labels, boxes, mask_input)
        move = lambda x: None if x is None else x.to(self.device)
        with torch.inference_mode():
            logits, scores, low_res = self.backend.decode(
                self.embedding, move(point_coords), move(point_labels), move(boxes), move(mask_input),
                multimask_output)
        masks = logits.float() if return_logits else logits > MASK_THRESHOLD
        return masks, scores, low_res

    def _require_image(self) -> None:
        if not self.is_image_set:
            raise RuntimeError("call set_image(image) before predict: no image is set")


def load_backend(path: str | Path, *, kind: str | None = None, device: str = "auto", **options) -> PromptBackend:
    """A checkpoint file -> its backend, through the `BACKENDS` registry (kind read from the file unless given)."""
    path = Path(path)
    kind = kind or checkpoint_kind(path, options)
    if kind not in BACKENDS:
        raise KeyError(f"{path}: unknown prompt backend kind {kind!r}; known: {', '.join(sorted(BACKENDS))}")
    loader: Callable[..., PromptBackend] = BACKENDS[kind]
    return loader(path, device=device, **options)


def _array(value, dtype, name: str) -> np.ndarray:
    try:
        return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: not a numeric array ({e})") from None
