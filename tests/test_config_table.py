"""The key table (seglab/config_keys.py) is the one source: Config is built from it, and its declared
choices, formats and model arguments agree with the registries in the code that reads the keys."""
import dataclasses
import inspect
import pickle

import pytest

from seglab.config import KEYS, Config, make_config
from seglab.config_keys import KEY_TABLE, KEYS_BY_NAME, MODEL_ARGUMENTS, MODES, TASKS


def test_config_is_built_from_the_table():
    fields = {f.name: f.default for f in dataclasses.fields(Config)}
    assert list(fields) == KEYS == [k.name for k in KEY_TABLE]
    assert fields == {k.name: k.default for k in KEY_TABLE}
    assert make_config() == Config() and Config().to_dict() == fields


def test_config_pickles():  # torchrun / DataLoader workers pass configs between processes
    cfg = make_config(epochs=3, imgsz="64x96")
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_every_key_is_described_and_used_by_a_mode():
    for key in KEY_TABLE:
        assert key.help and key.modes, key.name
        assert set(key.modes) <= set(MODES), key.name


def test_the_table_modes_are_the_cli_modes():
    from seglab.modes import MODES as runnable

    assert set(MODES) == set(runnable)


def test_every_default_passes_its_own_validation():
    from seglab.config import validate

    for key in KEY_TABLE:
        validate(key, key.default)


def test_new_keys_are_declared():
    resize, task = KEYS_BY_NAME["resize"], KEYS_BY_NAME["task"]
    assert (resize.default, resize.choices, resize.modes) == ("stretch", ("stretch", "crop"), ("train",))
    assert task.default == "" and task.choices == ("", *TASKS) and "semantic" in TASKS
    assert set(task.modes) == set(MODES)


def choices(name):
    return set(KEYS_BY_NAME[name].choices)


def test_declared_choices_match_the_code_that_reads_them():
    from seglab.data import FORMATS
    from seglab.data.augment import PRESETS
    from seglab.engine.device import DTYPES
    from seglab.engine.evaluate import RESOLUTIONS
    from seglab.engine.optim import DEFAULT_LR
    from seglab.engine.trainer import SELECTION_METRICS
    from seglab.inference.predictor import MODES as INFERENCE_MODES
    from seglab.inference.tiling import BLENDS
    from seglab.tasks.semantic.export import FORMATS as EXPORT_FORMATS

    from seglab.tasks import TASKS

    assert SELECTION_METRICS == TASKS["semantic"].selection_metrics
    trained = [task for task in TASKS.values() if "train" in task.modes]  # metric picks best.pt
    assert choices("metric") == {"", *(m for task in trained for m in task.selection_metrics)}
    assert choices("optimizer") == set(DEFAULT_LR)
    from seglab.data.instance.augment import PRESETS as INSTANCE_PRESETS  # instance and panoptic

    assert choices("augment_preset") == set(PRESETS) == set(INSTANCE_PRESETS)
    assert choices("precision") == {"auto", *DTYPES}
    assert choices("resolution") == set(RESOLUTIONS)
    assert choices("mode") == set(INFERENCE_MODES)
    assert choices("blend") == set(BLENDS)
    assert choices("format") == set(EXPORT_FORMATS)
    assert choices("dataset") == {"auto", *FORMATS}


def test_declared_backends_match_the_benchmark():
    timing = pytest.importorskip("seglab.benchmark.timing")
    from seglab.config_keys import BACKEND_NAMES

    assert set(BACKEND_NAMES) == set(timing.BACKENDS)


def test_declared_schedules_are_the_ones_the_optimizer_knows():
    from seglab.engine.optim import lr_factor

    for name in choices("schedule"):
        lr_factor(name, 0.5)
    with pytest.raises(KeyError):
        lr_factor("linear", 0.5)


def test_declared_formats_match_the_split_loaders():
    """A dataset key names the formats whose load_split takes it (download: Pet's fetcher)."""
    from seglab.data import FORMATS

    for key in KEY_TABLE:
        if key.formats and key.name != "download":
            takes = {name for name, fmt in FORMATS.items() if key.name in inspect.signature(fmt.load_split).parameters}
            assert set(key.formats) == takes, key.name
    assert KEYS_BY_NAME["download"].formats == ("pet",)


def test_model_arguments_match_the_model_constructors():
    """Every model argument is taken by some architecture, and every semantic constructor option is a key
    (instance models have many more options than keys: docs/instance_models.md)."""
    from seglab.models import MODELS, TASK_MODELS

    taken = set()
    for cls in MODELS.values():
        options = set(inspect.signature(cls).parameters) - {"num_classes", "in_channels"}
        assert options <= set(MODEL_ARGUMENTS), (cls.__name__, options - set(MODEL_ARGUMENTS))
    for registry in TASK_MODELS.values():
        for cls in registry.values():
            taken |= set(inspect.signature(cls).parameters) - {"num_classes", "in_channels"}
    assert set(MODEL_ARGUMENTS) <= taken


def test_instance_options_defaults_equal_the_keys_they_are_read_from():
    """InstanceOptions (the API's defaults) sits below the key table, so it states its defaults again: they
    must be the table's, or a Python caller and `seglab predict` paint different id maps."""
    from seglab.inference.instance import InstanceOptions

    checked = {f.name: f.default for f in dataclasses.fields(InstanceOptions)
               if f.name in KEYS_BY_NAME and f.default is not None}  # None: the checkpoint's value
    assert {"max_covered", "min_score", "overlap", "auto_tile", "tile", "mode"} <= set(checked)
    assert checked == {name: KEYS_BY_NAME[name].default for name in checked}
