"""`seglab predict task=prompt prompts=prompts.json`: masks for given points / boxes, through the Predictor.

prompts.json maps an image (a path, absolute or relative to `source=` or else to the JSON's folder)
to one prompt or a list of prompts, each `{"points": [[x, y], ...], "labels": [1, 0, ...],
"box": [x0, y0, x1, y1]}` (points and box optional, at least one). Per image it writes
`<stem>.png` (object k of the list = id k; 16-bit when more than 255 objects; where masks overlap the
later prompt wins) and `<stem>_overlay.png`, and one `predictions.json` with each prompt's score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.config import Config, ConfigError
from seglab.data.io import DataError, read_image
from seglab.data.spec import default_colors
from seglab.models.source import resolve_model
from seglab.prompt.predictor import Predictor


def read_prompts(path: Path) -> dict[str, list[dict]]:
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"prompts={path}: cannot be read as JSON ({e})") from None
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"prompts={path}: expected an object mapping image paths to prompts")
    out = {}
    for image, prompts in table.items():
        prompts = [prompts] if isinstance(prompts, dict) else prompts
        for i, p in enumerate(prompts):
            if not isinstance(p, dict) or not ({"points", "box"} & set(p)) or set(p) - {"points", "labels", "box"}:
                raise ConfigError(f"prompts={path}: {image} prompt {i}: expected keys points (+ labels) and/or box")
            if "points" in p and len(p.get("labels", [])) != len(p["points"]):
                raise ConfigError(f"prompts={path}: {image} prompt {i}: one label per point is needed")
        out[image] = prompts
    return out


def image_path(name: str, source: str, prompts_file: Path) -> Path:
    for base in ([Path(source)] if source else []) + [prompts_file.parent, Path(".")]:
        candidate = Path(name) if Path(name).is_absolute() else base / name
        if candidate.is_file():
            return candidate
    raise DataError(f"prompts={prompts_file}: image {name!r} not found (looked in source= and next to the JSON)")


def predict_image(predictor: Predictor, image: np.ndarray, prompts: list[dict]) -> tuple[np.ndarray, list[float]]:
    predictor.set_image(image)
    ids = np.zeros(image.shape[:2], np.uint16 if len(prompts) > 255 else np.uint8)
    scores = []
    for k, p in enumerate(prompts, start=1):
        points = p.get("points")
        masks, score, _ = predictor.predict(point_coords=points, point_labels=p.get("labels") if points else None,
                                            box=p.get("box"), multimask_output=False)
        ids[masks[0]] = k
        scores.append(float(score[0]))
    return ids, scores


def overlay(image: np.ndarray, ids: np.ndarray) -> np.ndarray:
    colors = np.array(default_colors(int(ids.max()) + 2)[1:], np.float32)
    out = image.astype(np.float32)
    inside = ids > 0
    out[inside] = 0.5 * out[inside] + 0.5 * colors[ids[inside].astype(np.int64) - 1]
    return out.astype(np.uint8)


def predict(cfg: Config) -> Path:
    if not cfg.prompts:
        raise ConfigError("predict task=prompt needs prompts=FILE.json (image -> points / labels / box)")
    prompts_file = Path(cfg.prompts)
    table = read_prompts(prompts_file)
    source = resolve_model(cfg.model)
    predictor = Predictor(source.path, device=cfg.device)
    out = Path(cfg.out) if cfg.out else source.path.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, prompts in table.items():
        path = image_path(name, cfg.source, prompts_file)
        image = np.asarray(read_image(path))
        ids, scores = predict_image(predictor, image, prompts)
        Image.fromarray(ids).save(out / f"{path.stem}.png")
        Image.fromarray(overlay(image, ids)).save(out / f"{path.stem}_overlay.png")
        written[name] = {"mask": f"{path.stem}.png", "scores": scores}
    (out / "predictions.json").write_text(json.dumps(written, indent=1))
    if cfg.verbose:
        print(f"{predictor.backend.name}: {sum(len(p) for p in table.values())} prompts on {len(table)} images "
              f"-> {out.resolve()}")
    return out
