"""`seglab predict`: class-index PNG, colour PNG and overlay per input image, at the image's own size."""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.config import Config
from seglab.data.io import IMAGE_SUFFIXES, DataError, read_image
from seglab.engine.device import Runtime
from seglab.inference.overlay import colorize, overlay
from seglab.inference.predictor import Predictor


def expand_source(source: str) -> list[Path]:
    """A file, a folder (its images, sorted) or a glob pattern -> image paths."""
    if not source:
        raise ValueError("predict needs source=FILE|FOLDER|GLOB")
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    elif path.is_file():
        files = [path]
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise FileNotFoundError(f"source={source}: no image files found")
    return files


def _write(out: Path, path: Path, labels: np.ndarray, predictor: Predictor) -> None:
    classes = predictor.classes
    Image.fromarray(labels).save(out / f"{path.stem}.png")
    Image.fromarray(colorize(labels, classes.colors, classes.ignore_index)).save(out / f"{path.stem}_color.png")
    image = np.asarray(read_image(path))
    Image.fromarray(overlay(image, labels, classes.colors, classes.ignore_index)).save(out / f"{path.stem}_overlay.png")


def predict(cfg: Config) -> Path:
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    predictor = Predictor(cfg.model, runtime)
    files = expand_source(cfg.source)
    out = Path(cfg.out) if cfg.out else Path(cfg.model).parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for start in range(0, len(files), cfg.batch):
        chunk = files[start:start + cfg.batch]
        try:
            results = list(zip(chunk, predictor.predict_files(chunk)))
        except DataError:  # find the bad file(s); the rest of the batch still gets predicted
            results = []
            for path in chunk:
                try:
                    results.append((path, predictor.predict_files([path])[0]))
                except DataError as e:
                    failed.append(str(e))
                    print(f"skipped: {e}", file=sys.stderr)
        for path, labels in results:
            _write(out, path, labels, predictor)
    if cfg.verbose:
        print(f"predicted {len(files) - len(failed)} of {len(files)} images -> {out.resolve()}"
              f" (<name>.png class ids, <name>_color.png, <name>_overlay.png)")
    if failed:
        (out / "errors.txt").write_text("\n".join(failed) + "\n")
    return out
