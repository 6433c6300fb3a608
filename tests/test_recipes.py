"""Every recipe under configs/ parses into a valid config whose model builds."""

from pathlib import Path

import pytest

from seglab.config import make_config
from seglab.models import build_model, model_arguments

RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses_and_its_model_builds(recipe):
    cfg = make_config(cfg=str(recipe))
    assert cfg.name == recipe.stem
    args = model_arguments(cfg.model, 3, cfg.to_dict())
    build_model(cfg.model, args, pretrained=False)


def test_there_are_recipes():
    assert {p.stem for p in RECIPES} >= {"pet_unet", "pet_unet_lite0", "camvid"}
