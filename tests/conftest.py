"""Shared fixtures: tiny datasets written with PIL into tmp_path, and a guard that keeps tests off the network."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "seglab" / "assets" / "pet_sample"

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_real_connect, _real_getaddrinfo = socket.socket.connect, socket.getaddrinfo


def _loopback_only(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOOPBACK:
        raise OSError(f"tests may only contact 127.0.0.1, not {address[0]}")
    return _real_connect(self, address)


def _resolve_loopback_only(host, *args, **kwargs):
    if host not in _LOOPBACK and host not in ("", None):
        raise socket.gaierror(f"tests may only contact 127.0.0.1, not {host}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Inside a test, Python code can neither resolve nor connect to any host but loopback."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    monkeypatch.setattr(socket, "getaddrinfo", _resolve_loopback_only)


def write_image(path: Path, size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB", seed: int = 0) -> Path:
    """Random pixels of `size` (width, height) saved in `fmt`, whatever the file's suffix says."""
    rng = np.random.default_rng(seed)
    width, height = size
    if mode == "P":
        image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).convert("P")
    else:
        channels = len(mode)
        image = Image.fromarray(rng.integers(0, 256, (height, width, channels), dtype=np.uint8).squeeze(), mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


def write_mask(path: Path, labels: np.ndarray) -> Path:
    """An 8-bit single-channel (mode L) PNG holding `labels` exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(labels, dtype=np.uint8), "L").save(path, format="PNG")
    return path


def random_labels(size: tuple[int, int], values, seed: int = 0) -> np.ndarray:
    width, height = size
    return np.random.default_rng(seed).choice(np.asarray(values, dtype=np.uint8), (height, width))


@pytest.fixture
def make_pet(tmp_path):
    """make_pet(trainval=[...], test=[...], sizes={name: (w, h)}) -> root in the official Pet layout.

    Images are JPEGs, trimaps hold the values 1 (pet), 2 (background), 3 (border) and all three occur.
    """

    def make(trainval, test=(), sizes=None, root=None, unlisted=()):
        root = Path(root or tmp_path / "pet")
        sizes = sizes or {}
        ann = root / "annotations"
        for i, name in enumerate([*trainval, *test, *unlisted]):
            size = sizes.get(name, (24 + i % 3, 20 + i % 5))
            write_image(root / "images" / f"{name}.jpg", size, "JPEG", seed=i)
            labels = random_labels(size, [1, 2, 3], seed=i)
            labels[0, :3] = [1, 2, 3]
            write_mask(ann / "trimaps" / f"{name}.png", labels)
        ann.mkdir(parents=True, exist_ok=True)
        (ann / "trainval.txt").write_text("".join(f"{n} 1 1 1\n" for n in trainval))
        (ann / "test.txt").write_text("".join(f"{n} 2 2 1\n" for n in test))
        return root

    return make


@pytest.fixture
def make_folder(tmp_path):
    """make_folder(stems, num_classes=3, meta=None, splits=None) -> root with images/ + masks/ (+ dataset.json)."""
    import json

    def make(stems, num_classes=3, meta=None, splits=None, root=None, image_suffix=".png", ignore=None):
        root = Path(root or tmp_path / "folder")
        for i, stem in enumerate(stems):
            size = (16 + i % 4, 12 + i % 3)
            fmt = "JPEG" if image_suffix in (".jpg", ".jpeg") else "PNG"
            write_image(root / "images" / f"{stem}{image_suffix}", size, fmt, seed=i)
            labels = random_labels(size, range(num_classes), seed=i)
            labels[0, :num_classes] = np.arange(num_classes)
            if ignore is not None:
                labels[-1, -1] = ignore
            write_mask(root / "masks" / f"{stem}.png", labels)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        if meta is not None:
            (root / "dataset.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
        for split, names in (splits or {}).items():
            (root / "splits").mkdir(exist_ok=True)
            (root / "splits" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
        return root

    return make
