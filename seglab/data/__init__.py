"""Dataset formats: name -> (layout check, split loader). `open_split` picks the format and the split."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from seglab.data import camvid, folder, pet
from seglab.data.dataset import SegmentationDataset, load_image, load_mask, load_pair
from seglab.data.io import DataError
from seglab.data.spec import ClassTable, SplitSpec

FORMATS = {
    "pet": (pet.is_pet, pet.load_split),
    "camvid": (camvid.is_camvid, camvid.load_split),
    "folder": (folder.is_folder, folder.load_split),
}


def sample_root() -> Path:
    """The bundled Oxford-IIIT Pet sample (official layout, downscaled)."""
    return Path(str(resources.files("seglab") / "assets" / "pet_sample"))


def resolve_root(data: str) -> Path:
    return sample_root() if data in ("", "sample") else Path(data).expanduser()


def detect_format(root: Path) -> str:
    for name, (matches, _) in FORMATS.items():
        if matches(root):
            return name
    if not root.exists():
        raise DataError(f"{root}: dataset folder does not exist")
    raise DataError(
        f"{root}: not a dataset layout seglab knows. Expected images/ + masks/ (folder), "
        f"images/ + annotations/trimaps/ (Oxford-IIIT Pet) or train.txt + trainannot/ (CamVid, SegNet layout)"
    )


def open_split(cfg, split: str) -> SplitSpec:
    root = resolve_root(cfg.data)
    if cfg.download and cfg.dataset in ("auto", "pet") and not folder.is_folder(root):
        pet.download(root)  # Oxford-IIIT Pet only: never fetch Pet archives into a folder dataset
    fmt = detect_format(root) if cfg.dataset == "auto" else cfg.dataset
    if fmt not in FORMATS:
        raise KeyError(f"unknown dataset format '{fmt}'. Valid formats: auto, {', '.join(FORMATS)}")
    spec = FORMATS[fmt][1](root, split, classes=cfg.classes, seed=cfg.seed, val_fraction=cfg.val_fraction)
    if not spec.pairs:
        raise DataError(f"{root}: split '{split}' is empty")
    return spec


__all__ = ["FORMATS", "ClassTable", "DataError", "SegmentationDataset", "SplitSpec", "load_image", "load_mask", "load_pair", "open_split",
           "resolve_root", "sample_root"]
