"""docs/configuration.md is generated from the key table; regenerate it with
`python -m seglab.config_keys > docs/configuration.md` when this test fails."""
from pathlib import Path

from seglab.config_keys import KEY_TABLE, MODES, reference_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_the_committed_reference_is_what_the_table_generates():
    assert DOC.read_text() == reference_markdown(), (
        "docs/configuration.md is out of date: run `python -m seglab.config_keys > docs/configuration.md`")


def test_the_reference_names_every_key_under_each_of_its_modes():
    text = reference_markdown()
    sections = {part.split("\n", 1)[0]: part for part in text.split("\n## ")[1:]}
    for key in KEY_TABLE:
        for mode in MODES:
            assert (f"\n| `{key.name}` |" in sections[mode]) == (mode in key.modes), (key.name, mode)
