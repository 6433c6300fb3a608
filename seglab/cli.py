"""Command line: `seglab MODE key=value ...` (modes: train, val, predict, help)."""

from __future__ import annotations

import difflib
import sys

from seglab.config import KEYS, Config, ConfigError, make_config, parse_overrides

HELP = """\
seglab MODE key=value ...

Modes
  train     train a model; writes runs/<name>/ (config.yaml, best.pt, last.pt, metrics.csv,
            metrics.json, curves.png, samples/)
  val       score a checkpoint on a dataset split (per-class table + val_<split>.json)
  predict   class-index PNG, colour PNG and overlay per image of a file, folder, glob or video (tiling, TTA)
  export    a checkpoint as ONNX (dynamic batch/height/width; classes and normalisation as metadata)
  benchmark inference latency p50/p90 and throughput on PyTorch eager / fast / compiled and onnxruntime
  models    list every model (parameters, GFLOPs at 256x256) and every encoder
  verify    check every image/mask pair of every split of a dataset; report sizes and class shares
  help      this text

Examples (paste them)
  seglab train                                     # U-Net on the bundled Oxford-IIIT Pet sample
  seglab train data=../shared/data/oxford-iiit-pet-subset width=32 time=10m name=pet
  seglab train data=path/to/folder imgsz=256 epochs=50 loss=ce+dice optimizer=sgd lr=0.01
  seglab train cfg=configs/pet_unet.yaml batch=16  # a recipe (YAML), then key=value overrides
  seglab val model=runs/pet/best.pt split=test
  seglab val model=runs/pet/best.pt data=path/to/folder split=val resolution=train
  seglab predict model=runs/pet/best.pt source=photos/ out=masks/
  seglab verify data=../shared/data/camvid           # exit code 1 if any pair is unusable
  seglab export model=runs/pet/best.pt format=onnx   # writes runs/pet/best.onnx
  seglab benchmark model=unet width=16 imgsz=256 batch=8
  seglab train model=deeplabv3plus encoder=resnet50 encoder_weights=imagenet output_stride=16

Data layouts (docs/datasets.md): Oxford-IIIT Pet as released (images/, annotations/trimaps/,
annotations/*.txt; classes=trimap|binary, download=true fetches it), CamVid (SegNet layout),
Pascal VOC 2012 (+ SBD with voc_aug=true), or a folder with images/ and masks/ paired by file stem
(optional dataset.json and splits/<split>.txt).

Keys and defaults
"""


def _help_text() -> str:
    defaults = Config().to_dict()
    return HELP + "\n".join(f"  {k} = {defaults[k]!r}" for k in KEYS) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(_help_text())
        return 0
    mode, args = argv[0], argv[1:]
    from seglab.modes import MODES as modes

    if mode not in modes:
        close = difflib.get_close_matches(mode, [*modes, "help"], n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        print(f"seglab: unknown mode '{mode}'.{hint} Modes: {', '.join([*modes, 'help'])}", file=sys.stderr)
        return 2
    from seglab.data.io import DataError
    from seglab.engine.checkpoint import CheckpointError
    from seglab.engine.trainer import TrainingError

    try:
        cfg = make_config(parse_overrides(args))
        result = modes[mode](cfg)
    except (ConfigError, DataError, CheckpointError, TrainingError, KeyError, ValueError, FileNotFoundError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"seglab {mode}: {message}", file=sys.stderr)
        return 1
    return result if type(result) is int else 0
