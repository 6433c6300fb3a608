"""The run folder: config.yaml, best.pt / last.pt, metrics.csv, metrics.json, curves.png, samples/."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import yaml


def new_run_dir(project: str, name: str, exist_ok: bool = False) -> Path:
    """runs/<name>, or runs/<name>2, runs/<name>3 ... when it is taken (unless exist_ok)."""
    base = Path(project) / name
    path, n = base, 2
    while path.exists() and not exist_ok:
        path = base.with_name(f"{base.name}{n}")
        n += 1
    path.mkdir(parents=True, exist_ok=True)
    return path


def _clean(value):
    """JSON-safe: NaN/inf become None, tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: dict) -> None:
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2))
    os.replace(tmp, path)


def write_config(run_dir: Path, config: dict) -> None:
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


class MetricsLog:
    """metrics.csv, a row per epoch; its header is every column of the rows so far, in order of first appearance
    (an epoch that was not validated, val_every, leaves the val columns empty)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[dict] = []

    def rewrite(self, rows: list[dict]) -> None:
        """Start the file over with `rows` (a resumed run drops rows written after its checkpoint)."""
        self.rows = []
        self.path.unlink(missing_ok=True)
        for row in rows:
            self.append(row)

    def append(self, row: dict) -> None:
        header = list(dict.fromkeys(k for r in self.rows for k in r))
        self.rows.append(row)
        widened = any(k not in header for k in row)
        if widened:  # a column appears (the first validated epoch): the file is written again with it
            header = list(dict.fromkeys(k for r in self.rows for k in r))
        new = widened or not self.path.exists()
        with open(self.path, "w" if new else "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            if new:
                writer.writeheader()
            for r in self.rows if new else [row]:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def validated(rows: list[dict], column: str) -> tuple[list, list]:
    """(epochs, values) of the rows holding a number in `column` (epochs not validated have none)."""
    pairs = [(r["epoch"], r[column]) for r in rows if isinstance(r.get(column), (int, float)) and not math.isnan(r[column])]
    return [e for e, _ in pairs], [v for _, v in pairs]


def plot_curves(rows: list[dict], path: Path, metric: str = "val_miou") -> None:
    """Loss (train and val) and the val `metric` column (mIoU unless the task's rows say otherwise) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    rows = [{k: (math.nan if v is None else v) for k, v in r.items()} for r in rows]
    fig, (ax_loss, ax_iou) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train")
    ax_loss.plot(*validated(rows, "val_loss"), marker=".", label="val")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    metric = metric if any(metric in r for r in rows) else "val_miou"
    ax_iou.plot(*validated(rows, metric), marker=".", color="tab:green")
    label = metric.removeprefix("val_")
    ax_iou.set(xlabel="epoch", ylabel=label, title=f"val {label}", ylim=(0, 1))
    for ax in (ax_loss, ax_iou):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
