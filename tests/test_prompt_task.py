"""task=prompt end to end: train (imgsz 64) -> checkpoint -> val JSON -> predict, and NoC recomputed from the Predictor."""

import json
from pathlib import Path

import numpy as np
import pytest

import seglab
from seglab.data.io import read_image
from seglab.data.prompt import open_object_split
from seglab.engine.checkpoint import load_checkpoint
from seglab.metrics.clicks import mask_iou, number_of_clicks
from seglab.prompt.predictor import Predictor

from test_prompt_click import blobs_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("prompt")
    data = blobs_dataset(root / "blobs", count=6)
    run = seglab.train(task="prompt", data=str(data), imgsz=64, epochs=1, batch=2, max_clicks=3, encoder_weights="",
                       project=str(root / "runs"), name="t", verbose=False, seed=0, val_fraction=0.34)
    return Path(run), data


def test_train_writes_a_prompt_checkpoint_selected_on_noc(trained):
    run, _ = trained
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["task"] == "prompt" and ckpt["arch"]["name"] == "click_seg"
    assert ckpt["preprocess"]["size"] == 64 and ckpt["preprocess"]["resize"] == "longer_side_square"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 1 <= metrics["noc_90"] <= 3 and metrics["num_objects"] > 0
    assert "val_noc_90" in (run / "metrics.csv").read_text().splitlines()[0]


def test_val_noc_is_what_the_predictor_gives_for_the_recorded_clicks(trained, tmp_path):
    run, data = trained
    result = seglab.val(task="prompt", model=str(run / "best.pt"), split="val", max_clicks=3, out=str(tmp_path),
                        verbose=False)
    assert (tmp_path / "val_val.json").is_file()
    dataset = result["datasets"][0]
    split = open_object_split(data, "val", seed=0, val_fraction=0.34)
    predictor = Predictor(run / "best.pt", device="cpu")
    rows = {row["id"]: row for row in dataset["per_object"]}
    nocs = []
    for item in split.images:
        objects = item.load()
        predictor.set_image(np.asarray(read_image(item.image)))
        for k in range(1, objects.count + 1):
            row = rows[f"{item.name}#{k}"]
            previous, ious = None, []
            for n in range(1, len(row["clicks"]) + 1):  # replay the recorded clicks through the Predictor
                clicks = np.array(row["clicks"][:n])
                masks, scores, low = predictor.predict(point_coords=clicks[:, :2], point_labels=clicks[:, 2],
                                                       mask_input=previous, multimask_output=previous is None)
                best = int(np.argmax(scores))
                previous = low[best][None]
                ious.append(mask_iou(objects.mask(k), masks[best], objects.ignore))
            np.testing.assert_allclose(ious, row["ious"], atol=1e-6)
            nocs.append(number_of_clicks(ious, 0.9, 3))
    assert dataset["noc_90"] == pytest.approx(np.mean(nocs))
    assert dataset["timing"]["click_ms"]["count"] >= len(nocs) and dataset["timing"]["set_image_s"]["count"] > 0


def test_predict_writes_masks_for_given_prompts(trained, tmp_path):
    run, data = trained
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({str(data / "images" / "b0.png"): [{"points": [[35, 37]], "labels": [1]},
                                                                      {"box": [2, 2, 20, 20]}]}))
    out = seglab.predict(task="prompt", model=str(run / "best.pt"), prompts=str(prompts), out=str(tmp_path / "o"),
                         verbose=False)
    ids = np.asarray(read_image_l(Path(out) / "b0.png"))
    assert ids.shape == (48, 48) and set(np.unique(ids)) <= {0, 1, 2}
    written = json.loads((Path(out) / "predictions.json").read_text())
    assert len(next(iter(written.values()))["scores"]) == 2


def read_image_l(path):
    from PIL import Image

    return Image.open(path)


def test_bad_prompts_file_is_named(trained, tmp_path):
    run, _ = trained
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"x.png": [{"point": [[1, 2]]}]}))
    with pytest.raises(ValueError, match="p.json"):
        seglab.predict(task="prompt", model=str(run / "best.pt"), prompts=str(bad), verbose=False)


def test_val_data_picks_the_selection_datasets_among_those_trained_on(tmp_path):
    from seglab.config import ConfigError, make_config
    from seglab.tasks.prompt.train import object_splits, selection_data

    first, second = blobs_dataset(tmp_path / "a", count=3), blobs_dataset(tmp_path / "b", count=3)
    both = f"{first},{second}"
    assert selection_data(make_config(task="prompt", data=both)) == both
    cfg = make_config(task="prompt", data=both, val_data=str(second))
    splits = object_splits(cfg, "val", data=selection_data(cfg))
    assert len(splits) == 1 and len(object_splits(cfg, "val")) == 2
    with pytest.raises(ConfigError, match="not one of data="):
        selection_data(make_config(task="prompt", data=str(first), val_data=str(second)))
