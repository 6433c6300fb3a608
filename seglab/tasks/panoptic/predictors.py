"""What names the panoptic model of val / predict: a network checkpoint (`model=`), a fusion checkpoint (written by
`seglab train task=panoptic semantic_model=A instance_model=B`, recording both), or the fusion's two parts given
directly (`semantic_model=` and `instance_model=`, no `model=`), or an exported network (`model=FILE.onnx`,
seglab/inference/panoptic_onnx.py). A fusion has no architecture of its own, so it is named by its parts, not by
an architecture name.

`mode=` / `tile=` / `overlap=` / `auto_tile=` reach a network's predictor (seglab/inference/panoptic_tiling.py),
so val and predict tile alike. A fusion is not tiled: mode=tile is refused by name, mode=auto runs each part's
own path on the whole image."""

from __future__ import annotations

from seglab.config import Config, ConfigError, given_keys
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.device import Runtime
from seglab.inference.panoptic import PanopticPredictor
from seglab.inference.panoptic_fusion import FusionOptions, FusionPredictor
from seglab.inference.panoptic_onnx import onnx_predictor
from seglab.inference.panoptic_tiling import TileOptions
from seglab.models import DEFAULT_MODELS
from seglab.models.source import require, resolve_model

FUSION_KEYS = {"fusion_score": "score_threshold", "fusion_overlap": "overlap_threshold",
               "fusion_stuff_area": "stuff_area"}  # config key -> FusionOptions field
PARTS = ("semantic_model", "instance_model")


def names_parts(cfg: Config) -> bool:
    """semantic_model= or instance_model= given: the config names a fusion by its parts."""
    return any(getattr(cfg, key) for key in PARTS)


def is_direct_fusion(cfg: Config) -> bool:
    """A fusion named by its parts alone (no fusion checkpoint): train assembles it; val / predict run it."""
    return names_parts(cfg) and cfg.model in ("", DEFAULT_MODELS["panoptic"])  # train fills in the default


def fusion_options(cfg: Config, recorded: dict | None = None) -> FusionOptions:
    """The fusion parameters: the keys set, else those the fusion checkpoint recorded, else the keys' defaults."""
    given = given_keys(cfg)
    values = {field: getattr(cfg, key) if recorded is None or key in given else recorded.get(field, getattr(cfg, key))
              for key, field in FUSION_KEYS.items()}
    return FusionOptions(**values)


def part(path: str, key: str) -> str:
    if not path:
        raise ConfigError(f"a panoptic fusion needs both {' and '.join(f'{k}=CHECKPOINT.pt' for k in PARTS)} "
                          f"({key} is missing)")
    return str(require(resolve_model(path), key, ("checkpoint",)).path)


def fusion_from_config(cfg: Config, runtime: Runtime) -> FusionPredictor:
    return FusionPredictor(part(cfg.semantic_model, "semantic_model"), part(cfg.instance_model, "instance_model"),
                           runtime, fusion_options(cfg))


def refuse_tiling(cfg: Config) -> None:
    if cfg.mode == "tile":
        raise ConfigError("mode=tile: a panoptic fusion is not tiled (each part runs its own inference path on the "
                          "whole image); use mode=auto or mode=stretch, or tile a panoptic network "
                          "(model=best.pt mode=tile)")


def open_predictor(cfg: Config, runtime: Runtime):
    """A PanopticPredictor or FusionPredictor for the config."""
    if is_direct_fusion(cfg):
        refuse_tiling(cfg)
        return fusion_from_config(cfg, runtime)
    source = require(resolve_model(cfg.model), "panoptic val / predict", ("checkpoint", "onnx"))
    recorded = load_checkpoint(source.path).get("fusion") if source.kind == "checkpoint" else None
    if recorded is None:
        if names_parts(cfg):
            network = "network checkpoint" if source.kind == "checkpoint" else "exported network"
            raise ConfigError(f"model={cfg.model} is a {network}; semantic_model= / instance_model= name the parts "
                              "of a fusion (leave model= out, or give a fusion checkpoint)")
        if source.kind == "onnx":  # an exported network: onnxruntime, then the model's grouping in torch
            return onnx_predictor(source.path, runtime, cfg.threads, TileOptions.from_config(cfg))
        return PanopticPredictor(source.path, runtime, options=TileOptions.from_config(cfg))
    refuse_tiling(cfg)
    semantic, instance = (getattr(cfg, key) or recorded[key] for key in PARTS)
    return FusionPredictor(part(semantic, "semantic_model"), part(instance, "instance_model"), runtime,
                           fusion_options(cfg, recorded))
