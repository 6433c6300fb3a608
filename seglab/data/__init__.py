"""Dataset formats: name -> (layout check, split loader, splits to verify). `open_split` picks the format and the split."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable, NamedTuple

from seglab.data import camvid, folder, pet, semantic_from_instance, voc
from seglab.data.dataset import SegmentationDataset, load_image, load_mask, load_pair, write_skipped
from seglab.data.io import DataError
from seglab.data.spec import ClassTable, SplitSpec


def train_and_val(root: Path) -> list[str]:
    return ["train", "val"]


class Format(NamedTuple):
    matches: Callable[[Path], bool]  # does this folder hold the layout?
    load_split: Callable[..., SplitSpec]  # (root, split, **options) -> SplitSpec
    splits: Callable[[Path], list[str]] = train_and_val  # the splits `seglab verify` checks
    owns_layout: bool = True  # False: the layout is the instance task's; it names the semantic task only with task=


# the instance layouts read as semantic data (background + the instance classes; seglab/data/semantic_from_instance.py)
INSTANCE_VIEWS = {name: Format(*semantic_from_instance.view(name), owns_layout=False)
                  for name in semantic_from_instance.VIEWS}

FORMATS = {
    "pet": Format(pet.is_pet, pet.load_split, pet.splits),
    "camvid": Format(camvid.is_camvid, camvid.load_split, camvid.splits),
    "voc": Format(voc.is_voc, voc.load_split, voc.splits),
    "instance_folder": INSTANCE_VIEWS["instance_folder"],  # before folder: its dataset.json says "task": "instance"
    "folder": Format(folder.is_folder, folder.load_split, folder.splits),
    **INSTANCE_VIEWS,  # after every semantic layout, so none of those is read differently (instance_folder stays put)
}
# the formats that say "this folder is semantic data" (seglab/tasks/base.py Task.reads)
OWN_FORMATS = {name: fmt for name, fmt in FORMATS.items() if fmt.owns_layout}


def sample_root() -> Path:
    """The bundled Oxford-IIIT Pet sample (official layout, downscaled)."""
    return Path(str(resources.files("seglab") / "assets" / "pet_sample"))


def resolve_root(data: str) -> Path:
    return sample_root() if data in ("", "sample") else Path(data).expanduser()


def detect_format(root: Path) -> str:
    for name, fmt in FORMATS.items():
        if fmt.matches(root):
            return name
    if not root.exists():
        raise DataError(f"{root}: dataset folder does not exist")
    raise DataError(
        f"{root}: not a dataset layout seglab knows. Expected images/ + masks/ (folder), "
        f"images/ + annotations/trimaps/ (Oxford-IIIT Pet), train.txt + trainannot/ (CamVid, SegNet layout) "
        f"or JPEGImages/ + SegmentationClass/ (Pascal VOC 2012, also in VOC2012/ or VOCdevkit/VOC2012/), "
        f"or an instance layout read as background + its classes (COCO instances, YOLO, Penn-Fudan, DSB2018, "
        f"images/ + masks/ + dataset.json with \"task\": \"instance\")"
    )


def dataset_format(cfg) -> tuple[Path, str]:
    """The dataset root and its format name (downloading Oxford-IIIT Pet first with download=true)."""
    root = resolve_root(cfg.data)
    if cfg.download and cfg.dataset in ("auto", "pet") and not folder.is_folder(root):
        pet.download(root)  # Oxford-IIIT Pet only: never fetch Pet archives into a folder dataset
    fmt = detect_format(root) if cfg.dataset == "auto" else cfg.dataset
    if fmt not in FORMATS:
        raise KeyError(f"unknown dataset format '{fmt}'. Valid formats: auto, {', '.join(FORMATS)}")
    return root, fmt


def open_split(cfg, split: str) -> SplitSpec:
    root, fmt = dataset_format(cfg)
    spec = FORMATS[fmt].load_split(root, split, classes=cfg.classes, seed=cfg.seed, val_fraction=cfg.val_fraction,
                                   skip_bad=getattr(cfg, "skip_bad", False),
                                   voc_aug=getattr(cfg, "voc_aug", False))
    if not spec.pairs:
        raise DataError(f"{root}: split '{split}' is empty")
    return spec


__all__ = ["FORMATS", "OWN_FORMATS", "ClassTable", "DataError", "Format", "SegmentationDataset", "SplitSpec",
           "dataset_format", "detect_format", "load_image", "load_mask", "load_pair", "open_split", "resolve_root",
           "sample_root", "write_skipped"]
