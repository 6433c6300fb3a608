"""Command line: `seglab MODE key=value ...` (modes: train, val, predict, ..., help [MODE | KEY])."""

from __future__ import annotations

import difflib
import sys
import textwrap

from seglab.config import ConfigError, make_config, parse_overrides
from seglab.config_keys import KEYS_BY_NAME, MODES, Key, describe, mode_keys, show

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
  serve     a local web page: click / box prompts -> masks, saved as instance-id PNG + COCO JSON
  track     follow prompted objects through a clip: overlay video + per-frame object-id PNGs
  help      this text; `seglab help MODE` the keys of one mode, `seglab help KEY` one key in full

Examples (paste them)
  seglab train                                     # U-Net on the bundled Oxford-IIIT Pet sample
  seglab train data=../shared/data/oxford-iiit-pet-subset width=32 time=10m name=pet
  seglab train data=path/to/folder imgsz=256 epochs=50 loss=ce+dice optimizer=sgd lr=0.01
  seglab train cfg=configs/pet_unet.yaml batch=16  # a recipe (YAML), then key=value overrides
  seglab val model=runs/pet/best.pt split=test
  seglab val model=runs/pet/best.pt data=path/to/folder split=val resolution=train
  seglab predict model=runs/pet/best.pt source=photos/ out=masks/
  seglab verify data=../shared/data/camvid           # exit code 1 if any pair is unusable
  seglab serve model=runs/click/best.pt source=photos/ out=labels/  # annotate; then train task=instance
  seglab track model=runs/click/best.pt source=clip.mp4 prompts=prompts.json   # then: val task=video on DAVIS
  seglab export model=runs/pet/best.pt format=onnx   # writes runs/pet/best.onnx
  seglab benchmark model=unet width=16 imgsz=256 batch=8
  seglab train model=deeplabv3plus encoder=resnet50 encoder_weights=imagenet output_stride=16
  seglab train data=big_images resize=crop imgsz=512 # patches at native scale; predict then tiles
  seglab train data=PennFudanPed                     # instance task (the layout says so): Mask R-CNN
  seglab train cfg=configs/dsb2018_yolo_seg.yaml     # one-stage instance model on DSB2018 nuclei
  seglab help width                                  # one key in full; `seglab help val`: one mode's keys

Data layouts (docs/datasets.md): Oxford-IIIT Pet as released (images/, annotations/trimaps/,
annotations/*.txt; classes=trimap|binary, download=true fetches it), CamVid (SegNet layout),
Pascal VOC 2012 (+ SBD with voc_aug=true), or a folder with images/ and masks/ paired by file stem
(optional dataset.json and splits/<split>.txt; 0/255 masks read as background / foreground).
Instance layouts (docs/instance_data.md): COCO JSON, Ultralytics YOLO-seg, Penn-Fudan, DSB2018,
images/ + masks/ of instance ids (task=instance).

Keys by mode (key = default  help); a key given that the mode does not use is an error
"""


def _key_line(key: Key, with_allowed: bool = False) -> str:
    text = key.help + (f" [{key.allowed_text}]" if with_allowed and key.allowed_text else "")
    head = f"  {key.name} = {show(key.default)}"
    return textwrap.fill(text, width=110, initial_indent=f"{head:<34} ", subsequent_indent=" " * 35,
                         break_on_hyphens=False) if len(head) < 34 else f"{head}  {text}"


def _help_text() -> str:
    """Modes, examples, then each mode's keys; a key shared by several modes is listed at the first."""
    everywhere = [k for k in mode_keys(MODES[0]) if set(k.modes) == set(MODES)]
    lines = [HELP.rstrip("\n"), "\nevery mode", *map(_key_line, everywhere)]
    shown = {k.name for k in everywhere}
    for mode in MODES:
        keys = mode_keys(mode)
        again = [k.name for k in keys if k.name in shown - {e.name for e in everywhere}]
        lines.append(textwrap.fill(f"{mode}" + (f" (also: {', '.join(again)})" if again else ""), width=110,
                                   initial_indent="\n", subsequent_indent="  "))
        lines += [_key_line(k) for k in keys if k.name not in shown]
        shown.update(k.name for k in keys)
    return "\n".join(lines) + "\n"


def _help_topic(topic: str) -> int:
    """`seglab help MODE` or `seglab help KEY`; 2 for neither, with a suggestion."""
    if topic in MODES:
        print(f"seglab {topic}: keys (key = default  help [allowed]); `seglab help KEY` for one in full")
        print("\n".join(_key_line(k, with_allowed=True) for k in mode_keys(topic)))
        return 0
    if topic in KEYS_BY_NAME:
        print("\n".join(describe(KEYS_BY_NAME[topic])))
        return 0
    close = difflib.get_close_matches(topic, [*KEYS_BY_NAME, *MODES], n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else f" Modes: {', '.join(MODES)}; keys: `seglab help`."
    print(f"seglab help: '{topic}' is neither a mode nor a key.{hint}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("help", "-h", "--help"):
        if len(argv) > 1:
            return _help_topic(argv[1])
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
        cfg = make_config(parse_overrides(args), mode=mode)
        result = modes[mode](cfg)
    except (ConfigError, DataError, CheckpointError, TrainingError, KeyError, ValueError, FileNotFoundError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"seglab {mode}: {message}", file=sys.stderr)
        return 1
    return result if type(result) is int else 0
