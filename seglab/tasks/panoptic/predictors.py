"""What names the panoptic model of val / predict: a network checkpoint (`model=`), a fusion checkpoint (written by
`seglab train task=panoptic semantic_model=A instance_model=B`, recording both), or the fusion's two parts given
directly (`semantic_model=` and `instance_model=`, no `model=`). A fusion has no architecture of its own, so it
is named by its parts, not by an architecture name."""

from __future__ import annotations

from seglab.config import Config, ConfigError, given_keys
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.device import Runtime
from seglab.inference.panoptic import PanopticPredictor
from seglab.inference.panoptic_fusion import FusionOptions, FusionPredictor
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


def open_predictor(cfg: Config, runtime: Runtime):
    """A PanopticPredictor or FusionPredictor for the config."""
    if is_direct_fusion(cfg):
        return fusion_from_config(cfg, runtime)
    path = require(resolve_model(cfg.model), "panoptic val / predict", ("checkpoint",)).path
    ckpt = load_checkpoint(path)
    recorded = ckpt.get("fusion")
    if recorded is None:
        if names_parts(cfg):
            raise ConfigError(f"model={cfg.model} is a network checkpoint; semantic_model= / instance_model= name the "
                              "parts of a fusion (leave model= out, or give a fusion checkpoint)")
        return PanopticPredictor(path, runtime)
    semantic, instance = (getattr(cfg, key) or recorded[key] for key in PARTS)
    return FusionPredictor(part(semantic, "semantic_model"), part(instance, "instance_model"), runtime,
                           fusion_options(cfg, recorded))
