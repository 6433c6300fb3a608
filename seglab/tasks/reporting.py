"""What every task's `val` writes: val_<split>.json (next to the checkpoint, or in out=)."""

from __future__ import annotations

from pathlib import Path

from seglab.config import Config
from seglab.engine.run_folder import write_json
from seglab.models.source import resolve_model


def write_val_result(cfg: Config, data_root: Path, images: int, inference: str, scores: dict) -> tuple[dict, Path]:
    """The val JSON (model, data, split, images, inference, then the task's scores) and where it went."""
    final = {"model": str(cfg.model), "data": str(data_root), "split": cfg.split, "images": images,
             "inference": inference, **scores}
    out = Path(cfg.out) if cfg.out else resolve_model(cfg.model).path.parent
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"val_{cfg.split}.json"
    write_json(path, final)
    return final, path
