"""The frozen image encoder's embeddings, computed once per image and kept for every epoch and every validation.

- `EmbeddingCache`: image content (a SHA-1 of its pixels) -> features [1, 256, 64, 64], in RAM or as one
  file per image in a folder (`embedding_cache=disk`: <run>/embeddings/<sha1>.pt, for datasets larger than memory).
- `CachedEncoder`: a PromptBackend over a SamBackend whose `embed` looks the image up first, so the
  per-epoch click benchmark (through `seglab.prompt.Predictor`) runs only the decoder being trained.
- `EmbeddedObjects`: ObjectDataset items with the image replaced by its cached embedding (the image itself
  stays on the dataset's 256 x 256 canvas, the low-resolution frame of the targets; no augmentation, which
  would change the image the embedding was computed from).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seglab.data.io import read_image
from seglab.data.prompt import ObjectDataset
from seglab.prompt.backend import ImageEmbedding
from seglab.prompt.sam_official import SamBackend, longest_side_shape


def image_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes() + repr(image.shape).encode()).hexdigest()


class EmbeddingCache:
    """Embeddings of `backend`'s (frozen) image encoder by image content; `folder` None keeps them in RAM."""

    def __init__(self, backend: SamBackend, folder: Path | None = None):
        self.backend, self.folder = backend, None if folder is None else Path(folder)
        self.memory: dict[str, torch.Tensor] = {}
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    def features(self, image: np.ndarray) -> tuple[str, torch.Tensor]:
        """(key, features on the CPU) of an image, computed on the first request only."""
        key = image_key(image)
        if key in self.memory:
            return key, self.memory[key]
        if self.folder is not None and self.path(key).is_file():
            return key, self.load(key)
        # plain tensors even under Predictor's inference_mode: they feed a decoder that is being trained
        with torch.inference_mode(False), torch.no_grad():
            features = self.backend.embed(image).features.detach().cpu()
        if self.folder is None:
            self.memory[key] = features
        else:
            torch.save(features, self.path(key))
        return key, features

    def load(self, key: str) -> torch.Tensor:
        if key in self.memory:
            return self.memory[key]
        return torch.load(self.path(key), map_location="cpu", weights_only=True)


class CachedEncoder:
    """A PromptBackend: `backend` with its embeddings taken from `cache` (decode runs the live decoder)."""

    def __init__(self, backend: SamBackend, cache: EmbeddingCache):
        self.backend, self.cache = backend, cache
        self.name, self.device, self.image_size = backend.name, backend.device, backend.image_size

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        height, width = image.shape[:2]
        _, features = self.cache.features(image)
        return ImageEmbedding(features.to(self.device), (height, width),
                              longest_side_shape(height, width, self.backend.image_size))

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        return self.backend.decode(embedding, points, labels, boxes, mask_input, multimask)


class EmbeddedObjects(Dataset):
    """(features [256, 64, 64], {"mask", "ignore"} on the low-res canvas, index) per item of `objects`."""

    def __init__(self, objects: ObjectDataset, cache: EmbeddingCache, show_progress: bool = False):
        self.objects, self.cache = objects, cache
        self.keys = []
        for i, (_, item) in enumerate(objects.images):
            self.keys.append(cache.features(np.asarray(read_image(item.image)))[0])
            if show_progress and (i + 1) % 50 == 0:
                print(f"  embedded {i + 1}/{len(objects.images)} images", flush=True)

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, key):
        _, targets, index = self.objects[key]
        return self.cache.load(self.keys[index])[0], targets, index
