"""Accuracy per CPU-minute: val mIoU against cumulative training minutes, one line per run folder.

Reads each run folder's metrics.csv (written by `seglab train`: one row per epoch with `val_miou`
and the epoch's `seconds`) and draws mIoU over the minutes spent so far. The x axis is the sum of
the epochs' training seconds (validation excluded), so runs of different budgets compare at equal
CPU time.

    python benchmarks/accuracy_per_minute.py runs/pet_unet runs/pet_unet_lite0 --out docs/accuracy_per_minute.png
    python benchmarks/accuracy_per_minute.py runs/pet_unet=scratch runs/pet_unet_lite0=lite0   # NAME=LABEL
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path


def read_curve(run_dir: Path) -> tuple[list[float], list[float]]:
    """(cumulative minutes, val mIoU) per epoch from run_dir/metrics.csv."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.csv (is {run_dir} a seglab run folder?)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"seconds", "val_miou"} - set(rows[0] if rows else {})
    if not rows or missing:
        raise ValueError(f"{path}: needs rows with the columns seconds and val_miou"
                         + (f" (missing: {', '.join(sorted(missing))})" if rows else " (the file has no rows)"))
    minutes, miou, total = [], [], 0.0
    for row in rows:
        total += float(row["seconds"]) / 60
        minutes.append(total)
        miou.append(float(row["val_miou"] or "nan"))  # MetricsLog writes a missing value as ""
    return minutes, miou


def parse_run(arg: str) -> tuple[Path, str]:
    """'runs/x' or 'runs/x=label' -> (folder, label)."""
    folder, _, label = arg.partition("=")
    return Path(folder), label or Path(folder).name


def plot(curves: dict[str, tuple[list[float], list[float]]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (minutes, miou) in curves.items():
        ax.plot(minutes, miou, marker="o", markersize=3, label=label)
    ax.set(xlabel="training minutes (2 CPU cores)", ylabel="val mIoU", title=title, ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders, optionally FOLDER=LABEL")
    parser.add_argument("--out", default="docs/accuracy_per_minute.png")
    parser.add_argument("--title", default="accuracy per CPU-minute")
    args = parser.parse_args(argv)
    curves = {}
    for arg in args.runs:
        folder, label = parse_run(arg)
        try:
            curves[label] = read_curve(folder)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    plot(curves, Path(args.out), args.title)
    for label, (minutes, miou) in curves.items():
        best = max((m for m in miou if not math.isnan(m)), default=math.nan)
        print(f"{label}: {len(minutes)} epochs in {minutes[-1]:.1f} min, best val mIoU {best:.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
