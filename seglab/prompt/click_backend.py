"""seglab's click model (seglab/models/prompt/) as a backend of the prompt protocol (seglab/prompt/backend.py).

The frame is SAM's: the image is resized so its longer side is the model's size S (bilinear, as in
training) and padded bottom / right to S x S; points and boxes are scaled into it (a point (x, y)
names pixel column x, row y, i.e. its centre (x + 0.5, y + 0.5)); low-resolution logits are the
model's stride-4 logits over the whole S x S square resized to 256 x 256, and `mask_input` is read
back the same way; full-size masks are the logits upsampled to S x S, cropped to the image and
resized to the original size (SAM's postprocess_masks). `embed` runs the encoder and neck once per
image; `decode` only the click head, with BatchNorm folded into the convolutions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.engine.device import pick_device
from seglab.inference.fuse import fold_batchnorm
from seglab.prompt.backend import LOW_RES, MULTIMASK_OUTPUTS, ImageEmbedding, check_image, check_prompts

SINGLE = slice(0, 1)  # the model's output channels: 0 the single mask, 1-3 the multimask candidates
MULTI = slice(1, 1 + MULTIMASK_OUTPUTS)


def square_input(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 [H, W, 3] -> uint8 [size, size, 3] (longer side `size`, zero padded) and the resized (h, w)."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = image if (h, w) == (height, width) else np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:h, :w] = resized
    return canvas, (h, w)


class ClickBackend:
    """A click model (embed + decode, seglab/models/prompt/) with its normalisation and input size S."""

    def __init__(self, model: torch.nn.Module, size: int, mean, std, device: str | torch.device = "auto",
                 name: str = "click_seg"):
        self.device = pick_device(device) if isinstance(device, str) else torch.device(device)
        self.size = int(size)
        if self.size % model.multiple:
            raise ValueError(f"click model input size {self.size} must be a multiple of {model.multiple}")
        self.model = fold_batchnorm(model)[0].to(self.device).eval()
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1) * 255
        self.name = name

    def normalise(self, canvas: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(canvas).to(self.device).permute(2, 0, 1)[None].float()
        return (x - self.mean) / self.std

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        image = check_image(image)
        canvas, input_size = square_input(image, self.size)
        with torch.inference_mode():
            features = self.model.embed(self.normalise(canvas))
        return ImageEmbedding(features, tuple(image.shape[:2]), input_size,
                              {"scale": self.size / max(image.shape[:2])})

    def decode(self, embedding: ImageEmbedding, points, labels, boxes, mask_input, multimask: bool):
        check_prompts(points, labels, boxes, mask_input)
        scale = embedding.extra["scale"]
        to = lambda t, dtype: None if t is None else t.to(self.device, dtype)  # noqa: E731
        points_in = None if points is None else (to(points, torch.float32) + 0.5) * scale
        boxes_in = None if boxes is None else to(boxes, torch.float32) * scale
        with torch.inference_mode():
            logits, iou = self.model.decode(embedding.features, points_in, to(labels, torch.int64), boxes_in,
                                            to(mask_input, torch.float32))
        chosen = MULTI if multimask else SINGLE
        logits, scores = logits[:, chosen].float(), iou[:, chosen].float()
        low_res = F.interpolate(logits, size=(LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
        return self.full_size(logits, embedding), scores, low_res

    def full_size(self, logits: torch.Tensor, embedding: ImageEmbedding) -> torch.Tensor:
        """Stride-4 logits of the square -> logits at the original image size."""
        h, w = embedding.input_size
        square = F.interpolate(logits, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return F.interpolate(square[..., :h, :w], size=embedding.original_size, mode="bilinear", align_corners=False)


def backend_from_checkpoint(ckpt: dict, device: str = "auto", size: int | None = None) -> ClickBackend:
    """The backend of a seglab checkpoint with task "prompt" (its model, normalisation and size)."""
    preprocess = ckpt["preprocess"]
    model = model_from_checkpoint(ckpt)
    name = f"{ckpt['arch']['name']}_{ckpt['arch']['args'].get('encoder') or 'efficientnet_lite0'}"
    return ClickBackend(model, size or preprocess["size"], preprocess["mean"], preprocess["std"], device, name)


def load(path: str | Path, device: str = "auto", size: int | None = None, **options) -> ClickBackend:
    """BACKENDS["click"]: a seglab click-model checkpoint -> its backend (`size` overrides the input size)."""
    if options:
        raise TypeError(f"{path}: the click-model loader takes device and size, not {', '.join(options)}")
    ckpt = load_checkpoint(path)
    if ckpt.get("task") != "prompt":
        raise ValueError(f"{path}: a seglab {ckpt.get('task', 'semantic')!r} checkpoint, not a click model (task 'prompt')")
    return backend_from_checkpoint(ckpt, device, size)
