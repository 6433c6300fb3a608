"""A Markdown results table from seglab run folders: the table in docs/benchmarks.md.

For each run folder: the architecture and its parameter count (from best.pt), the epochs and
training minutes and the mean training img/s (from metrics.csv), and the scores of
`seglab val model=RUN/best.pt split=SPLIT` (from RUN/val_SPLIT.json: pixel accuracy, mean class
accuracy, mIoU, Boundary F1, per-class IoU).

    python benchmarks/results_table.py runs/pet_unet runs/zoo_fcn8s --split test
    python benchmarks/results_table.py runs/pet_unet="U-Net w32 scratch" ...        # FOLDER=LABEL
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from seglab.engine.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint


def describe_arch(arch: dict) -> str:
    args = arch.get("args", {})
    extras = [f"{k}={args[k]}" for k in ("encoder", "encoder_weights", "width") if args.get(k)]
    return arch["name"] + (f" ({', '.join(extras)})" if extras else "")


def run_row(run_dir: Path, split: str) -> dict:
    """One table row; raises FileNotFoundError naming what is missing."""
    run_dir = Path(run_dir)
    needed = [run_dir / "best.pt", run_dir / "metrics.csv", run_dir / f"val_{split}.json"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir}: missing {', '.join(missing)} "
                                f"(train it, then `seglab val model={run_dir}/best.pt split={split}`)")
    ckpt = load_checkpoint(run_dir / "best.pt")
    params = sum(p.numel() for p in model_from_checkpoint(ckpt).parameters())
    with open(run_dir / "metrics.csv", newline="") as f:
        epochs = list(csv.DictReader(f))
    scores = json.loads((run_dir / f"val_{split}.json").read_text())
    return {
        "arch": describe_arch(ckpt["arch"]), "params_m": params / 1e6, "epochs": len(epochs),
        "minutes": sum(float(r["seconds"]) for r in epochs) / 60,
        "img_s": sum(float(r["img_per_s"]) for r in epochs) / max(1, len(epochs)),
        "pixel_accuracy": scores["pixel_accuracy"], "mean_class_accuracy": scores["mean_class_accuracy"],
        "miou": scores["miou"], "boundary_f1": scores.get("boundary_f1"),
        "iou_per_class": scores["iou_per_class"], "images": scores["images"],
    }


def markdown(rows: dict[str, dict]) -> str:
    classes = list(next(iter(rows.values()))["iou_per_class"])
    head = ["run", "model", "params (M)", "epochs", "train min", "train img/s", "pixel acc", "mean class acc",
            "mIoU", "BF"] + [f"IoU {c}" for c in classes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    for label, r in rows.items():
        cells = [label, r["arch"], f"{r['params_m']:.2f}", str(r["epochs"]), f"{r['minutes']:.1f}", f"{r['img_s']:.1f}",
                 pct(r["pixel_accuracy"]), pct(r["mean_class_accuracy"]), pct(r["miou"]), pct(r["boundary_f1"])]
        cells += [pct(r["iou_per_class"].get(c)) for c in classes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders, optionally FOLDER=LABEL")
    parser.add_argument("--split", default="test", help="which val_SPLIT.json to read")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    rows = {}
    for arg in args.runs:
        folder, _, label = arg.partition("=")
        try:
            rows[label or Path(folder).name] = run_row(Path(folder), args.split)
        except (FileNotFoundError, CheckpointError, KeyError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
