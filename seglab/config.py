"""Typed configuration: table defaults, then a YAML file (`cfg=...`), then `key=value` overrides.

Every key is declared once in seglab/config_keys.py (type, default, help, allowed values, the modes,
models and dataset formats that use it); this module builds the `Config` dataclass from that table
and checks every value when it is set, so a bad value fails before any folder is made or data read.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import sys
from pathlib import Path

import yaml

from seglab.config_keys import KEY_TABLE, KEYS_BY_NAME, MODEL_ARGUMENTS, MODES, Key


class ConfigError(ValueError):
    """A configuration key or value that cannot be used; the message says how to fix it."""


def _to_dict(self) -> dict:
    return dataclasses.asdict(self)


Config = dataclasses.make_dataclass(
    "Config", [(k.name, k.type, dataclasses.field(default=k.default)) for k in KEY_TABLE],
    namespace={"to_dict": _to_dict, "__doc__": "Every configuration key (seglab/config_keys.py), with its default."})
Config.__module__ = __name__  # pickles (torchrun, DataLoader workers) as seglab.config.Config

KEYS = [k.name for k in KEY_TABLE]
ARCHITECTURE_MODES = ("train", "benchmark")  # modes that build the architecture named by `model`
CHECKPOINT_SUFFIXES = (".pt", ".onnx")


def _suggest(key: str, names=None) -> str:
    names = KEYS if names is None else list(names)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(names)}."


def _coerce(key: str, value):
    """Turn a YAML/CLI value into the type the key declares."""
    hint = KEYS_BY_NAME[key].type
    if hint not in (bool, int, float, str) or value is None:
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
        if hint is str and isinstance(value, (dict, list)):
            raise ValueError
        return hint(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{key}={value!r}: expected {hint.__name__}") from None


def validate(key: Key, value):
    """The value coerced to the key's type and canonical form; ConfigError naming the key, the value and
    what is allowed when it is not."""
    value = _coerce(key.name, value)
    if key.aliases and str(value).lower() in key.aliases:
        value = key.aliases[str(value).lower()]
    if key.choices and value not in key.choices:
        raise ConfigError(f"{key.name}={value!r}: expected {key.allowed_text}")
    optional = value is None and key.default is None  # null where null is the default: the model's own value
    if key.check is not None and not optional and not key.check.test(value):
        raise ConfigError(f"{key.name}={value!r}: {key.check.text}")
    if key.parse is not None:
        try:
            value = key.parse(value)
        except (TypeError, ValueError) as e:
            text = str(e)
            raise ConfigError(text if text.startswith(f"{key.name}=") else f"{key.name}={value!r}: {text}") from None
    return value


def apply(cfg, values: dict, origin: str):
    for key, value in values.items():
        if key not in KEYS_BY_NAME:
            raise ConfigError(f"unknown key '{key}' in {origin}.{_suggest(key)}")
        setattr(cfg, key, validate(KEYS_BY_NAME[key], value))
    return cfg


def parse_overrides(args: list[str]) -> dict:
    """`key=value` strings to a dict; values are read as YAML scalars ("3" -> 3, "true" -> True).

    Keys declared as text keep the text as typed (name=0123 stays "0123", not YAML 1.1's octal 83)."""
    out = {}
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not key=value.{_suggest(arg)}")
        key, _, text = arg.partition("=")
        key = key.strip()
        if key == "cfg" or (key in KEYS_BY_NAME and KEYS_BY_NAME[key].type is str):
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


def make_config(overrides: dict | None = None, mode: str | None = None, **kwargs):
    """Defaults, then the YAML file named by `cfg`, then the overrides (dict or keyword arguments).

    `mode` is the run mode (train, val, predict, ...): a key given in `overrides` / keyword arguments
    that the mode does not use, or a model argument that the architecture does not take, is then an
    error (keys from the YAML file may be unused: recipes are shared between modes). The predict key
    also named `mode` (auto | stretch | tile) goes in the overrides dict: make_config({"mode": "tile"})."""
    values = dict(overrides or {})
    values.update(kwargs)
    if mode is not None and mode not in MODES:
        raise ConfigError(f"mode={mode!r}: the run mode is one of {', '.join(MODES)} (the predict key `mode`, "
                          "auto | stretch | tile, goes in the overrides dict: make_config({'mode': 'tile'}))")
    cfg = Config()
    cfg_file = values.pop("cfg", None)
    from_file = load_yaml(cfg_file) if cfg_file else {}
    if cfg_file:
        apply(cfg, from_file, str(cfg_file))
    if mode is not None:
        check_mode_keys(values, mode)
    apply(cfg, values, "the arguments")
    if mode is not None:
        check_model_arguments(cfg, values, mode)
    cfg.given = frozenset(from_file) | frozenset(values)
    return cfg


def given_keys(cfg) -> frozenset:
    """The keys a config's YAML file or arguments set (make_config); a Config built by hand: every key."""
    return getattr(cfg, "given", frozenset(KEYS))


def check_mode_keys(explicit: dict, mode: str) -> None:
    for name in explicit:
        key = KEYS_BY_NAME.get(name)
        if key is None:
            raise ConfigError(f"unknown key '{name}' in the arguments.{_suggest(name)}")
        if mode not in key.modes:
            raise ConfigError(f"{name}={explicit[name]!r}: `seglab {mode}` does not use '{name}' "
                              f"(used by: {', '.join(key.modes)}; `seglab help {name}`)")


def is_checkpoint_path(model: str) -> bool:
    return Path(str(model)).suffix.lower() in CHECKPOINT_SUFFIXES


def check_model_arguments(cfg, explicit: dict, mode: str) -> None:
    """train / benchmark with an architecture name: the name exists, and every model argument given
    explicitly is one its constructor takes (read from the signature, as seglab.models does)."""
    if mode not in ARCHITECTURE_MODES:
        return
    if not cfg.model and not cfg.task:  # the task (hence the default model) follows from the data: checked
        return                          # once it is known (seglab/modes/dispatch.py, `non_default_model_arguments`)
    given = [k for k in MODEL_ARGUMENTS if k in explicit]
    if mode == "benchmark" and is_checkpoint_path(cfg.model):
        if given:
            names = ", ".join(f"'{k}'" for k in given)
            raise ConfigError(f"model={cfg.model}: a checkpoint brings its own architecture arguments; "
                              f"{names} {'does' if len(given) == 1 else 'do'} not apply")
        return
    from seglab.models import DEFAULT_MODELS, model_class

    model = cfg.model or DEFAULT_MODELS[cfg.task or "semantic"]
    try:
        cls = model_class(model)
    except KeyError as e:
        hint = " (train builds an architecture; continue a run with resume=RUN)" if is_checkpoint_path(cfg.model) else ""
        raise ConfigError(f"model={cfg.model!r}: {e.args[0]}{hint}") from None
    takes = [k for k in MODEL_ARGUMENTS if k in inspect.signature(cls).parameters]
    for name in given:
        if name not in takes:
            raise ConfigError(f"model={model} {name}={explicit[name]!r}: {model} does not take '{name}'; "
                              f"it takes {', '.join(takes) or 'none of the model arguments'}")


def check_task_keys(cfg, task: str) -> None:
    """A key set (recipe or arguments) to other than its default for a task that does not read it is an
    error, not silently ignored (`seglab train task=instance resize=crop` would train stretched)."""
    for name in sorted(given_keys(cfg)):
        key = KEYS_BY_NAME[name]
        if key.tasks and task not in key.tasks and getattr(cfg, name) != key.default:
            raise ConfigError(f"{name}={getattr(cfg, name)!r}: the {task} task does not use '{name}' (read by the "
                              f"{', '.join(key.tasks)} task{'s' if len(key.tasks) > 1 else ''}; `seglab help {name}`)")


def non_default_model_arguments(cfg) -> dict:
    """The model arguments whose value differs from the table's default (what a user must have set)."""
    return {k: getattr(cfg, k) for k in MODEL_ARGUMENTS if getattr(cfg, k) != KEYS_BY_NAME[k].default}


def unused_format_keys(cfg, fmt: str) -> list[str]:
    """Dataset keys set to a non-default value that the format `fmt` does not read."""
    out = []
    for key in KEY_TABLE:
        if key.formats and fmt not in key.formats and getattr(cfg, key.name, key.default) != key.default:
            out.append(f"{key.name}={getattr(cfg, key.name)!r} is not used by the {fmt} dataset format "
                       f"(only by: {', '.join(key.formats)})")
    return out


def warn_unused_format_keys(cfg, fmt: str) -> None:
    """Called by the data layer once the format is known; each warning is printed once."""
    for message in unused_format_keys(cfg, fmt):
        _warn_once(message)


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    print(f"seglab: warning: {message}", file=sys.stderr)


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
