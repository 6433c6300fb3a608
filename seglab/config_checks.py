"""The value checks of the key table (seglab/config_keys.py): ranges and parsers of structured values.

A range is a `Check(test, text)`; a parser turns a value into its canonical form or raises ValueError
saying what is expected. Parsers that need torch (losses, encoders, scales) import it only when called.
"""

from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple


class Check(NamedTuple):
    """A range: `test(value)` is True for allowed values; `text` says which (`epochs=-3: must be at least 1`)."""

    test: Callable[[Any], bool]
    text: str


def at_least(low) -> Check:
    return Check(lambda v: v is not None and v >= low, f"must be at least {low}")


def above(low) -> Check:
    return Check(lambda v: v is not None and v > low, f"must be above {low}")


def in_range(low, high, high_included: bool = False) -> Check:
    if high_included:
        return Check(lambda v: v is not None and low <= v <= high, f"must be at least {low} and at most {high}")
    return Check(lambda v: v is not None and low <= v < high, f"must be at least {low} and below {high}")


# --- parsers of structured values: value -> canonical value, or ValueError saying what is expected ---

def parse_imgsz(value):
    from seglab.data.size import canonical

    return canonical(value)


def parse_time_text(value):
    from seglab.config import parse_time

    parse_time(value)
    return value


DEVICE_TEXT = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def parse_device(value):
    if not DEVICE_TEXT.match(value):
        raise ValueError("expected auto, cpu, cuda or cuda:N (N = a GPU index)")
    return value


def parse_loss(value):
    from seglab.losses.build import parse_loss_spec

    try:
        parse_loss_spec(value)
    except KeyError as e:
        raise ValueError(e.args[0] if e.args else str(e)) from None
    return value


def parse_class_weights(value):
    if value in (None, "", "none", "median"):
        return value
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in value):
        return list(value)
    raise ValueError("expected '' (none), median, or a list of non-negative numbers, one per class")


def parse_decoder_channels(value):
    def is_width(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    if value is None or is_width(value):
        return value
    if isinstance(value, (list, tuple)) and value and all(is_width(v) for v in value):
        return list(value)
    raise ValueError("expected a width (e.g. 256), a list of widths (e.g. [256, 128, 64, 32, 16]) or null "
                     "(the model's default)")


def _is_positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def parse_anchor_sizes(value):
    if value is None:
        return value
    if isinstance(value, (list, tuple)) and value and all(
            _is_positive_int(v) or (isinstance(v, (list, tuple)) and v and all(map(_is_positive_int, v)))
            for v in value):
        return [list(v) if isinstance(v, (list, tuple)) else v for v in value]
    raise ValueError("expected null (the model's default) or one size per pyramid level, e.g. [8, 16, 32, 64, 128] "
                     "or [[8], [16], [32], [64], [128]]")


def parse_strides(value):
    if value is None or (isinstance(value, (list, tuple)) and value and all(map(_is_positive_int, value))):
        return None if value is None else list(value)
    raise ValueError("expected null (the model's default) or a list of doubling strides, e.g. [4, 8, 16, 32]")


def parse_encoder(value):
    from seglab.encoders import ENCODERS, TIMM_PREFIX

    if value == "" or value in ENCODERS or (value.startswith(TIMM_PREFIX) and len(value) > len(TIMM_PREFIX)):
        return value
    raise ValueError(f"expected '' (the model's default), {TIMM_PREFIX}NAME or one of {', '.join(ENCODERS)}")


def parse_scales(value):
    from seglab.inference.tta import parse_scales as scales

    scales(value)
    return value


BACKEND_NAMES = ("eager", "channels_last", "fast", "compile", "onnxruntime")  # == the benchmark's BACKENDS (tested)


def parse_backends(value):
    names = [n.strip() for n in str(value).split(",") if n.strip()]
    if not names or any(n not in BACKEND_NAMES for n in names):
        raise ValueError(f"expected a comma-separated list of {', '.join(BACKEND_NAMES)}")
    return value
