"""Typed configuration: dataclass defaults, then a YAML file (`cfg=...`), then `key=value` overrides."""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from seglab.data.size import canonical


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message says how to fix it."""


@dataclass
class Config:
    # what to run on
    model: str = "unet"  # architecture name (see `seglab models`) or a checkpoint .pt / .onnx
    data: str = ""  # dataset root folder; "sample" (the default for train) is the bundled Oxford-IIIT Pet sample
    dataset: str = "auto"  # auto | pet | folder
    classes: str = ""  # Oxford-IIIT Pet only: trimap (default: pet, background, border) | binary
    split: str = "val"  # split used by `seglab val`
    download: bool = False  # Oxford-IIIT Pet: fetch the official archives into `data` if missing
    val_fraction: float = 0.2  # folder datasets without split lists: held-out fraction (seeded)
    # model arguments (passed to the architecture when it takes them)
    width: int = 32
    depth: int = 4
    upsample: str = "transpose"  # transpose | bilinear
    norm: str = "batch"  # batch | group (normalisation layers of the classic U-Net)
    encoder: str = ""  # encoder-based models: "" = the model's default; see `seglab models` (timm:NAME for timm)
    encoder_weights: str = ""  # "" = random init | imagenet (torchvision / timm / pip package) | path to a state dict
    decoder_channels: typing.Any = None  # None = the model's default; one width (256) or a list ([256, 128, 64, 32, 16])
    dropout: float = 0.0  # decoders with dropout (pix2pix, fcn*, setr_*, segformer, deeplabv3plus)
    output_stride: int = 16  # deeplabv3plus: 8 | 16 | 32 (later encoder strides become dilations)
    # training
    imgsz: typing.Any = 128  # training size: S (square) or height x width, e.g. 256x352 or [256, 352]
    epochs: int = 30
    time: str = ""  # wall-clock budget, e.g. "10m", "90s", "1.5h"; empty = no budget
    batch: int = 8
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 0.0  # 0 = the optimizer's default (adamw 1e-3, sgd 1e-2)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    schedule: str = "cosine"  # cosine | poly | onecycle | constant (after `warmup_epochs` of linear warmup)
    loss: typing.Any = "ce+dice"  # "ce", "ce+dice" or {"ce": 0.5, "dice": 0.5}
    class_weights: typing.Any = ""  # loss class weights: "" (none) | median (median frequency of the train masks) | [w0, w1, ...]
    clip_grad: float = 0.0  # max gradient norm; 0 = no clipping
    accumulate: int = 1  # batches per optimizer step (gradient accumulation)
    ema: float = 0.0  # decay of an exponential moving average of the weights (e.g. 0.999); 0 = off
    metric: str = "miou"  # val metric that picks best.pt and drives early stopping: miou | pixel_accuracy | mean_dice | loss
    patience: int = 0  # early stopping: epochs without improvement of `metric`; 0 = off
    save_every: int = 0  # also write last.pt every N batches (mid-epoch resume points); 0 = epoch ends only
    resume: str = ""  # true (runs/<name>/last.pt), or a run folder or last.pt path: continue exactly where it stopped
    augment: bool = True
    augment_preset: str = "light"  # with augment=true: none | flip | light (crop, flip) | strong (+ rotation, zoom-out, colour)
    skip_bad: bool = False  # leave out image/mask pairs that cannot be used and list them in <run>/skipped.txt
    voc_aug: bool = False  # Pascal VOC: train on train_aug (VOC train + SBD, minus VOC val)
    cache: str = "auto"  # keep decoded, resized samples in RAM: auto (when under 4 GB) | ram | off
    workers: int = 0  # DataLoader worker processes (they share the 2 cores of a laptop with training)
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms; the seed is always honoured
    sync_bn: bool = False  # SyncBatchNorm across processes under torchrun
    # speed
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    channels_last: bool = True
    # outputs
    project: str = "runs"
    name: str = ""  # run folder name; default: the mode
    exist_ok: bool = False
    samples: int = 6  # overlays written to <run>/samples
    # val / predict
    resolution: str = "original"  # val scoring: original (each image's own size) | train (training size)
    source: str = ""  # predict: file, folder or glob
    out: str = ""  # predict: output folder (default <run folder of the model>/predict)
    verbose: bool = True
    # inference
    mode: str = "auto"  # predict: auto (stretch; tile when the image's longer side > auto_tile x the training size) | stretch | tile
    auto_tile: float = 8.0  # predict, mode=auto: tile images whose longer side exceeds this many training sizes
    tile: int = 0  # predict, tiling: tile size in pixels; 0 = the training size
    overlap: float = 0.25  # predict, tiling: fraction of a tile shared with its neighbour
    blend: str = "gaussian"  # predict, tiling: gaussian | constant weights for overlapping tiles
    tta: bool = False  # predict: mean probabilities over horizontal flip x `scales`
    scales: typing.Any = None  # predict, tta: image scales; None = [0.75, 1.0, 1.25]
    save_probs: bool = False  # predict: also <name>_probs.npy, softmax probabilities float16 [C, H, W]
    save_frames: bool = False  # predict on videos: also per-frame class-index PNGs in <name>_frames/
    compile: bool = False  # predict / benchmark: torch.compile with inductor freezing (compiles on first use)
    threads: int = 0  # predict / benchmark: CPU threads for torch and onnxruntime; 0 = torch's default
    format: str = "onnx"  # export: onnx
    opset: int = 17  # export: ONNX opset version
    backends: str = "eager,channels_last,fast,compile,onnxruntime"  # benchmark: which backends to time
    repeats: int = 10  # benchmark: timed runs per backend and batch size (interleaved)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


KEYS = [f.name for f in dataclasses.fields(Config)]


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(KEYS)}."


def _coerce(key: str, value):
    """Turn a YAML/CLI value into the type the field declares."""
    hint = typing.get_type_hints(Config)[key]
    if hint is typing.Any or value is None:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}={value!r}: expected true or false")
    try:
        if hint in (int, float) and isinstance(value, bool):  # bool is an int subclass: epochs=true is a mistake
            raise ValueError
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return hint(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r}: expected {hint.__name__}") from None


# Value ranges, checked when a key is set, so a bad value fails before any data is read or folder made.
LIMITS = {
    "batch": (lambda v: v >= 1, "must be at least 1"),
    "val_fraction": (lambda v: 0 <= v < 1, "must be at least 0 and below 1"),
}


def apply(cfg: Config, values: dict, origin: str) -> Config:
    for key, value in values.items():
        if key not in KEYS:
            raise ConfigError(f"unknown key '{key}' in {origin}.{_suggest(key)}")
        value = _coerce(key, value)
        if key in LIMITS and not LIMITS[key][0](value):
            raise ConfigError(f"{key}={value!r}: {LIMITS[key][1]}")
        if key == "time":
            parse_time(value)
        if key == "imgsz":
            value = _size(value)
        setattr(cfg, key, value)
    return cfg


def _size(value) -> int | list[int]:
    try:
        return canonical(value)
    except ValueError as e:
        raise ConfigError(f"imgsz={value!r}: {e}") from None


def parse_overrides(args: list[str]) -> dict:
    """`key=value` strings to a dict; values are read as YAML scalars ("3" -> 3, "true" -> True).

    Keys declared as text keep the text as typed (name=0123 stays "0123", not YAML 1.1's octal 83)."""
    hints = typing.get_type_hints(Config)
    out = {}
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not key=value.{_suggest(arg)}")
        key, _, text = arg.partition("=")
        key = key.strip()
        if hints.get(key) is str or key == "cfg":
            out[key] = text
            continue
        try:
            out[key] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            out[key] = text
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value")
    return values


def make_config(overrides: dict | None = None, **kwargs) -> Config:
    """Defaults, then the YAML file named by `cfg`, then the overrides (dict or keyword arguments)."""
    values = dict(overrides or {})
    values.update(kwargs)
    cfg = Config()
    cfg_file = values.pop("cfg", None)
    if cfg_file:
        apply(cfg, load_yaml(cfg_file), str(cfg_file))
    return apply(cfg, values, "the arguments")


def parse_time(text: str) -> float | None:
    """'10m' -> 600.0 seconds; '' -> None."""
    if not text:
        return None
    text = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    scale = units.get(text[-1])
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise ConfigError(f"time={text!r}: expected a duration like 90s, 10m or 1.5h") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"time={text!r}: must be a positive, finite duration")
    return seconds
