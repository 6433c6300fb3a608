"""Config: dataclass defaults, then a YAML file (cfg=), then key=value overrides; typed, with suggestions."""
import dataclasses

import pytest
import yaml

from seglab.config import KEYS, Config, ConfigError, make_config, parse_overrides, parse_time


def test_defaults_are_the_dataclass_defaults():
    cfg = make_config()
    assert cfg == Config()
    # model "" = the task's default architecture (unet for semantic), filled in when the task is known
    assert (cfg.model, cfg.epochs, cfg.imgsz, cfg.lr, cfg.augment, cfg.loss) == ("", 30, 128, 0.0, True, "ce+dice")
    assert set(cfg.to_dict()) == set(KEYS) == {f.name for f in dataclasses.fields(Config)}


def test_overrides_are_typed():
    cfg = make_config(parse_overrides(["epochs=3", "lr=0.01", "weight_decay=1e-3", "augment=false",
                                       "verbose=True", "channels_last=0", "name=run1", "time=10m"]))
    assert cfg.epochs == 3 and type(cfg.epochs) is int
    assert cfg.lr == 0.01 and type(cfg.lr) is float
    assert cfg.weight_decay == pytest.approx(1e-3) and type(cfg.weight_decay) is float  # YAML 1.1 reads 1e-3 as text
    assert cfg.augment is False and cfg.verbose is True and cfg.channels_last is False
    assert cfg.name == "run1" and cfg.time == "10m"


@pytest.mark.parametrize("text, expected", [("true", True), ("FALSE", False), ("yes", True), ("off", False),
                                            ("1", True), ("0", False)])
def test_bool_spellings(text, expected):
    assert make_config(parse_overrides([f"download={text}"])).download is expected


def test_int_from_integral_float_and_text():
    assert make_config(epochs=4.0).epochs == 4
    assert make_config(epochs="7").epochs == 7
    assert type(make_config(val_fraction=0).val_fraction) is float


@pytest.mark.parametrize("arg, key", [("epochs=2.5", "epochs"), ("epochs=ten", "epochs"), ("lr=fast", "lr"),
                                      ("augment=maybe", "augment"), ("augment=2", "augment"),
                                      ("epochs=true", "epochs"), ("batch=no", "batch")])
def test_bad_values_fail_naming_the_key(arg, key):
    with pytest.raises(ConfigError, match=rf"^{key}="):
        make_config(parse_overrides([arg]))


def test_text_keys_keep_the_text_as_typed():
    """Strings stay strings: no YAML 1.1 octal (0123 -> 83), booleans (no -> False) or nulls."""
    cfg = make_config(parse_overrides(["name=0123", "project=no", "data=null", "source=1.10"]))
    assert (cfg.name, cfg.project, cfg.data, cfg.source) == ("0123", "no", "null", "1.10")


def test_loss_keeps_structured_values():
    assert make_config(parse_overrides(["loss={ce: 0.5, dice: 0.5}"])).loss == {"ce": 0.5, "dice": 0.5}
    assert make_config(parse_overrides(["loss=ce"])).loss == "ce"


def test_empty_value_and_spaces():
    values = parse_overrides(["name=", " epochs =5"])
    assert values == {"name": "", "epochs": 5}


def test_argument_without_equals_sign():
    with pytest.raises(ConfigError, match="'epochs' is not key=value"):
        parse_overrides(["epochs"])


def test_yaml_file_then_overrides_win(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("epochs: 5\nlr: 0.02\nname: from_yaml\naugment: false\nloss: {ce: 1.0}\n")
    cfg = make_config(parse_overrides([f"cfg={path}", "epochs=9"]))
    assert cfg.epochs == 9  # the command line wins over the file
    assert cfg.lr == 0.02 and cfg.name == "from_yaml" and cfg.augment is False and cfg.loss == {"ce": 1.0}
    assert cfg.imgsz == Config.imgsz  # untouched keys keep their defaults


def test_yaml_values_are_coerced(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("epochs: '12'\nwidth: 16.0\nverbose: 'no'\n")
    cfg = make_config(cfg=path)
    assert (cfg.epochs, cfg.width, cfg.verbose) == (12, 16, False)


def test_saved_config_loads_back_to_the_same_values(tmp_path):
    cfg = make_config(parse_overrides(["epochs=3", "loss={ce: 0.3, dice: 0.7}", "name=x", "augment=false"]))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert make_config(cfg=path) == cfg


@pytest.mark.parametrize("typo, suggestion", [("epochz", "epochs"), ("imgzs", "imgsz"), ("lerning_rate", None)])
def test_unknown_key_on_the_command_line(typo, suggestion):
    with pytest.raises(ConfigError) as info:
        make_config(parse_overrides([f"{typo}=3"]))
    message = str(info.value)
    assert f"unknown key '{typo}'" in message and "the arguments" in message
    if suggestion:
        assert f"Did you mean '{suggestion}'?" in message
    else:
        assert "Valid keys:" in message and "epochs" in message


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 3\nepochz: 4\n")
    with pytest.raises(ConfigError, match=r"unknown key 'epochz' in .*bad\.yaml\. Did you mean 'epochs'\?"):
        make_config(cfg=str(path))


@pytest.mark.parametrize("text, message", [("epochs: [1\n", "not valid YAML"), ("- 1\n- 2\n", "must hold a mapping")])
def test_bad_yaml_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        make_config(cfg=path)


def test_empty_yaml_file_means_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert make_config(cfg=path) == Config()


def test_missing_yaml_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml does not exist"):
        make_config(cfg=tmp_path / "nope.yaml")


@pytest.mark.parametrize("text, seconds", [("10m", 600.0), ("90s", 90.0), ("1.5h", 5400.0), ("45", 45.0),
                                           (" 2M ", 120.0), ("0.5s", 0.5)])
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds


def test_parse_time_empty_is_no_budget():
    assert parse_time("") is None


@pytest.mark.parametrize("text", ["soon", "10x", "m", "5min", "-1m", "0", "0s", "nan", "inf", "infh"])
def test_parse_time_rejects(text):
    with pytest.raises(ConfigError, match="time="):
        parse_time(text)


@pytest.mark.parametrize("arg, message", [("imgsz=0", "imgsz=0: height and width must be at least 1"), ("batch=-2", "batch=-2: must be"),
                                          ("val_fraction=1", "val_fraction=1.0: must be"),
                                          ("val_fraction=-0.1", "val_fraction"), ("time=abc", "time='abc'"),
                                          ("time=-5m", "time='-5m'"), ("epochs=null", "epochs=None: must be"),
                                          ("mask_head_channels=0", "mask_head_channels=0: must be"),
                                          ("max_covered=1.5", "max_covered=1.5: must be")])
def test_out_of_range_values_fail_when_parsed(arg, message):
    """Checked with the config, before a run folder exists or any data is read."""
    with pytest.raises(ConfigError, match=message):
        make_config(parse_overrides([arg]))


def test_out_of_range_values_in_yaml(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("batch: 0\n")
    with pytest.raises(ConfigError, match="batch=0"):
        make_config(cfg=path)
    assert make_config(parse_overrides(["val_fraction=0", "time=", "imgsz=1"])).val_fraction == 0.0


def test_null_is_allowed_where_null_is_the_default():
    """mask_head_channels: null = the model's own 256; a number reaches the model."""
    from seglab.models import model_arguments

    assert make_config(parse_overrides(["mask_head_channels=null"])).mask_head_channels is None
    cfg = make_config(parse_overrides(["mask_head_channels=64", "model=maskrcnn"]))
    assert model_arguments("maskrcnn", 1, cfg.to_dict())["mask_head_channels"] == 64
