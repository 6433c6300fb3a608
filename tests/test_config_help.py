"""`seglab help`, `seglab help KEY`, `seglab help MODE`: printed from the key table."""
import pytest

from seglab.cli import main
from seglab.config_keys import KEY_TABLE, KEYS_BY_NAME, MODES, mode_keys, show


def help_of(capsys, *args):
    code = main(["help", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_every_key_under_the_first_mode_that_uses_it(capsys):
    code, text, _ = help_of(capsys)
    assert code == 0 and "Examples (paste them)" in text and "seglab predict model=" in text
    sections = text.split("\n\n")
    for key in KEY_TABLE:
        assert text.count(f"\n  {key.name} = {show(key.default)} ") == 1, key.name
    first_mode = next(s for s in sections if s.startswith("train"))
    assert "  epochs = 30 " in first_mode and "  split = " not in first_mode
    val = next(s for s in sections if s.startswith("val"))
    assert "  split = val " in val and "model" in val.splitlines()[0]  # shared keys are named, not repeated


@pytest.mark.parametrize("key", KEY_TABLE, ids=lambda k: k.name)
def test_help_key_prints_the_key_in_full(capsys, key):
    code, text, _ = help_of(capsys, key.name)
    assert code == 0
    assert text.startswith(f"{key.name} ({key.type_text}, default {show(key.default)})")
    assert key.help in text and f"modes: {', '.join(key.modes)}" in text
    for choice in key.choices:
        assert show(choice) in text
    if key.check:
        assert key.check.text in text
    if key.formats:
        assert f"dataset formats: {', '.join(key.formats)}" in text


def test_help_key_example(capsys):
    _, text, _ = help_of(capsys, "metric")
    assert ('allowed: one of "", miou, pixel_accuracy, mean_dice, loss, mask_ap, mask_ap50, matching_accuracy'
            in text and "modes: train" in text)
    _, text, _ = help_of(capsys, "val_fraction")
    assert "dataset formats: folder" in text and "must be at least 0 and below 1" in text


@pytest.mark.parametrize("mode", MODES)
def test_help_mode_lists_exactly_its_keys(capsys, mode):
    code, text, _ = help_of(capsys, mode)
    assert code == 0
    listed = {line.split(" = ")[0].strip() for line in text.splitlines() 
              if line.startswith("  ") and line[2] != " " and " = " in line}  # not the wrapped help lines
    assert listed == {k.name for k in mode_keys(mode)}


def test_help_typo_suggests(capsys):
    code, _, err = help_of(capsys, "epochz")
    assert code == 2 and "Did you mean 'epochs'?" in err
    code, _, err = help_of(capsys, "predikt")
    assert code == 2 and "Did you mean 'predict'?" in err
    assert KEYS_BY_NAME["epochs"]  # the table is what help reads
