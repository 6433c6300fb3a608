"""Every value is checked when the config is parsed (before any folder is made or data read), and a key
that the mode, the architecture or the dataset format does not use is reported by name."""
from pathlib import Path

import pytest

from seglab.cli import main
from seglab.config import ConfigError, make_config, parse_overrides, unused_format_keys
from seglab.config_keys import KEY_TABLE, MODEL_ARGUMENTS

RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_negative_epochs_fail_before_any_folder_or_data(tmp_path, capsys, monkeypatch):
    import seglab.data

    def no_data(*args, **kwargs):
        raise AssertionError("data was opened")

    import importlib

    semantic_train = importlib.import_module("seglab.tasks.semantic.train")  # now: it binds the real functions

    for module in (seglab.data, semantic_train):  # patched where they are read, and undone after the test
        monkeypatch.setattr(module, "dataset_format", no_data)
        monkeypatch.setattr(module, "open_split", no_data)
    project = tmp_path / "runs"
    assert main(["train", "epochs=-3", f"project={project}"]) == 1
    assert "epochs=-3: must be at least 1" in capsys.readouterr().err
    assert not project.exists()


def test_metric_typo_fails_at_parse_listing_the_choices():
    with pytest.raises(ConfigError) as info:
        make_config(parse_overrides(["metric=mIoU"]), mode="train")
    assert str(info.value).startswith("metric='mIoU': expected one of \"\", miou, pixel_accuracy, mean_dice, loss, "
                                      "mask_ap, mask_ap50, matching_accuracy, pq, pq_things, noc_90")


@pytest.mark.parametrize("arg", [
    "epochs=0", "batch=0", "lr=-1", "overlap=1", "overlap=-0.1", "auto_tile=0", "tile=-1", "patience=-1",
    "ema=1", "accumulate=0", "workers=-1", "samples=-1", "opset=5", "threads=-2", "repeats=0", "width=0",
    "dropout=1", "output_stride=12", "warmup_epochs=-1", "momentum=2", "seed=-1", "val_fraction=1",
    "cache=sometimes", "device=gpu", "device=cuda:x", "precision=fp8", "schedule=linear", "optimizer=adam",
    "augment_preset=medium", "resolution=full", "mode=crop", "blend=max", "format=tflite", "norm=layer",
    "upsample=nearest", "resize=pad", "task=panoptic_typo", "dataset=cityscapes", "classes=four", "time=soon",
    "loss=ce+dize", "class_weights=[1, x]", "decoder_channels=[8, 0]", "scales=[0]", "backends=eager,tpu",
    "encoder=resnet5", "imgsz=12x0",
])
def test_bad_values_fail_naming_key_and_value(arg):
    key, _, value = arg.partition("=")
    with pytest.raises(ConfigError) as info:
        make_config(parse_overrides([arg]))
    message = str(info.value)
    assert message.startswith(f"{key}=") and any(word in message for word in ("must", "expected", "valid"))


@pytest.mark.parametrize("arg, attr, expected", [
    ("device=cuda:1", "device", "cuda:1"), ("cache=false", "cache", "off"), ("cache=true", "cache", "ram"),
    ("class_weights=[1, 2.5]", "class_weights", [1, 2.5]), ("class_weights=median", "class_weights", "median"),
    ("decoder_channels=[8, 4]", "decoder_channels", [8, 4]), ("decoder_channels=64", "decoder_channels", 64),
    ("scales=0.5,1", "scales", "0.5,1"), ("backends=eager,fast", "backends", "eager,fast"),
    ("encoder=timm:resnet18", "encoder", "timm:resnet18"), ("loss={ce: 0.5, focal: 0.5}", "loss", {"ce": 0.5, "focal": 0.5}),
    ("ema=0.999", "ema", 0.999), ("overlap=0", "overlap", 0.0), ("task=semantic", "task", "semantic"),
    ("resize=crop", "resize", "crop"), ("output_stride=8", "output_stride", 8),
])
def test_good_values_are_accepted(arg, attr, expected):
    assert getattr(make_config(parse_overrides([arg])), attr) == expected


def test_a_key_the_mode_does_not_use_is_an_error():
    with pytest.raises(ConfigError) as info:
        make_config({"model": "runs/x/best.pt", "epochs": 3}, mode="val")
    message = str(info.value)
    assert "'epochs'" in message and "seglab val" in message and "used by: train" in message
    with pytest.raises(ConfigError, match=r"`seglab predict` does not use 'imgsz' \(used by: train, benchmark"):
        make_config({"model": "m.pt", "imgsz": 64}, mode="predict")


def test_every_key_of_a_mode_is_accepted_and_no_other(tmp_path):
    """Registry-driven: each key with its default value, given explicitly, for each mode."""
    for key in KEY_TABLE:
        for mode in ("train", "val", "predict", "export", "verify"):
            values = {key.name: key.default}
            if mode in key.modes:
                if key.name not in MODEL_ARGUMENTS or mode != "train":
                    make_config(values, mode=mode)
            else:
                with pytest.raises(ConfigError, match=f"does not use '{key.name}'"):
                    make_config(values, mode=mode)


def test_unused_keys_through_the_cli(capsys):
    assert main(["predict", "model=x.pt", "source=a.png", "epochs=3"]) == 1
    assert "`seglab predict` does not use 'epochs'" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_keys_may_be_unused(recipe):
    """Recipes are shared by train, val and predict: their keys are not checked against the mode."""
    assert make_config({"cfg": str(recipe)}, mode="train").name == recipe.stem
    make_config({"cfg": str(recipe), "model": "runs/x/best.pt", "split": "test"}, mode="val")


def test_a_model_argument_the_architecture_does_not_take():
    with pytest.raises(ConfigError) as info:
        make_config(parse_overrides(["model=segformer", "width=64"]), mode="train")
    message = str(info.value)
    assert message.startswith("model=segformer width=64: segformer does not take 'width'; it takes encoder")
    assert "decoder_channels" in message and "depth" not in message


def test_model_arguments_follow_the_constructor_signatures():
    import inspect

    from seglab.models import MODELS

    for name, cls in MODELS.items():
        params = inspect.signature(cls).parameters
        for arg in MODEL_ARGUMENTS:
            if arg == "encoder_weights":
                continue  # train only; its value may name a download
            value = {"decoder_channels": None}.get(arg, KEY_TABLE[[k.name for k in KEY_TABLE].index(arg)].default)
            for mode in ("train", "benchmark"):
                if arg in params:
                    make_config({"model": name, arg: value}, mode=mode)
                else:
                    with pytest.raises(ConfigError, match=f"{name} does not take '{arg}'"):
                        make_config({"model": name, arg: value}, mode=mode)


def test_model_names_and_checkpoints_by_mode():
    with pytest.raises(ConfigError, match="unknown model 'unet3'. Valid models:"):
        make_config({"model": "unet3"}, mode="train")
    with pytest.raises(ConfigError, match="unknown model 'runs/x/best.pt'"):
        make_config({"model": "runs/x/best.pt"}, mode="train")
    with pytest.raises(ConfigError, match="a checkpoint brings its own architecture arguments; 'width' does not"):
        make_config({"model": "runs/x/best.pt", "width": 8}, mode="benchmark")
    assert make_config({"model": "runs/x/best.pt", "imgsz": 64}, mode="benchmark").imgsz == 64
    # `models` builds every architecture: each takes the arguments it has
    assert make_config({"width": 8, "encoder": "resnet18"}, mode="models").width == 8


def test_recipe_model_arguments_are_not_checked(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("width: 16\n")
    assert make_config({"cfg": str(recipe), "model": "segformer"}, mode="train").model == "segformer"


def test_run_mode_and_the_predict_key_mode_do_not_mix():
    with pytest.raises(ConfigError, match="the run mode is one of train"):
        make_config(mode="tile")
    assert make_config({"mode": "tile"}, mode="predict").mode == "tile"


def test_python_api_checks_the_mode(tmp_path):
    import seglab

    with pytest.raises(ConfigError, match="`seglab val` does not use 'epochs'"):
        seglab.val(model=str(tmp_path / "x.pt"), epochs=2)


def test_dataset_keys_the_format_does_not_read(make_folder, capsys):
    assert unused_format_keys(make_config(classes="binary", voc_aug=True), "folder") == [
        "classes='binary' is not used by the folder dataset format (only by: pet)",
        "voc_aug=True is not used by the folder dataset format (only by: voc)"]
    assert unused_format_keys(make_config(classes="binary"), "pet") == []
    assert unused_format_keys(make_config(), "voc") == []  # defaults are never reported
    from seglab.tasks.semantic.verify import verify

    root = make_folder(["a", "b", "c"])
    verify(make_config(data=str(root), classes="binary", verbose=False))  # the modes warn once the format is known
    assert "warning: classes='binary' is not used by the folder dataset format" in capsys.readouterr().err
