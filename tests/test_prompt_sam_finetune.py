"""`seglab train task=prompt model=sam`: a reduced random-init official SAM (.pth) fine-tuned on 6 real Pet images.

The loss falls, NoC@85 (seglab val task=prompt, at most 5 clicks) on those training images improves on the
starting weights', only mask-decoder weights change, and the checkpoint loads through seglab.prompt.Predictor
as the official SamPredictor with the same weights answers."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import seglab
from seglab.config import ConfigError
from seglab.data.io import read_image
from seglab.prompt import Predictor
from seglab.prompt.sam_finetuned import official_state
from seglab.prompt.sam_official import build_sam
from seglab.tasks.prompt.sam_embeddings import EmbeddingCache

segment_anything = pytest.importorskip("segment_anything")

SMALL = {"encoder": "vit", "embed_dim": 32, "depth": 1, "num_heads": 1, "global_attn_indexes": [0]}
PET = Path(__file__).resolve().parents[1] / "seglab" / "assets" / "pet_sample"
# 7 trainval images: Pet's seeded split holds one out for val, the other 6 train
NAMES = ["Abyssinian_100", "Abyssinian_101", "Bengal_100", "Bengal_101", "Bengal_102", "american_bulldog_100",
         "american_bulldog_101"]
EPOCHS = 14  # ~40 s on 2 shared cores; 8 epochs do not reach IoU 0.85 on any object within 5 clicks


def pet_subset(root: Path) -> Path:
    """The bundled Pet sample's official layout, restricted to NAMES (real photos and trimaps, unmodified)."""
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    for name in NAMES:
        shutil.copy(PET / "images" / f"{name}.jpg", root / "images")
        shutil.copy(PET / "annotations" / "trimaps" / f"{name}.png", root / "annotations" / "trimaps")
    (root / "annotations" / "trainval.txt").write_text("".join(f"{n} 1 1 1\n" for n in NAMES))
    (root / "annotations" / "test.txt").write_text("")
    return root


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("sam_finetune")
    data = pet_subset(root / "pet")
    torch.manual_seed(0)
    weights = root / "sam_small.pth"
    torch.save(build_sam(SMALL).state_dict(), weights)
    noc = {"task": "prompt", "data": str(data), "split": "train", "max_clicks": 5, "verbose": False}
    before = seglab.val(model=str(weights), out=str(root / "before"), **noc)
    run = Path(seglab.train(task="prompt", model="sam", sam_checkpoint=str(weights), data=str(data), epochs=EPOCHS,
                            batch=1, lr=1e-3, schedule="constant", warmup_epochs=0, max_clicks=2, embedding_cache="disk", seed=0,
                            project=str(root / "runs"), name="sam", verbose=False))
    after = seglab.val(model=str(run / "last.pt"), out=str(root / "after"), **noc)
    return {"weights": weights, "run": run, "data": data, "before": before, "after": after}


def test_loss_falls_and_noc_improves_on_the_training_images(finetuned):
    rows = list(csv.DictReader((finetuned["run"] / "metrics.csv").open()))
    assert len(rows) == EPOCHS
    losses = [float(r["train_loss"]) for r in rows]
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    before, after = finetuned["before"], finetuned["after"]
    assert before["num_objects"] == after["num_objects"] == len(NAMES) - 1
    assert after["noc_85"] < before["noc_85"]
    assert after["miou_at_5"] > before["miou_at_5"] + 0.1


def test_only_the_mask_decoder_changed(finetuned):
    start = torch.load(finetuned["weights"], weights_only=True)
    tuned = official_state(torch.load(finetuned["run"] / "last.pt", weights_only=True))
    assert set(tuned) == set(start)
    changed = {k for k in start if not torch.equal(start[k], tuned[k])}
    assert changed and all(k.startswith("mask_decoder.") for k in changed)
    assert any(k.startswith("mask_decoder.output_hypernetworks_mlps.") for k in changed)


def test_predictor_loads_the_checkpoint_as_the_official_predictor_runs_it(finetuned):
    ckpt = finetuned["run"] / "best.pt"
    ours = Predictor(ckpt, device="cpu")
    assert ours.backend.name == "sam_custom_finetuned"
    sam = build_sam(SMALL)
    sam.load_state_dict(official_state(torch.load(ckpt, weights_only=True)))
    official = segment_anything.SamPredictor(sam)
    image = np.asarray(read_image(finetuned["data"] / "images" / f"{NAMES[0]}.jpg"))
    ours.set_image(image)
    official.set_image(image)
    prompt = {"point_coords": np.array([[100.0, 90.0], [10.0, 10.0]]), "point_labels": np.array([1, 0])}
    for got, want in zip(ours.predict(**prompt, return_logits=True), official.predict(**prompt, return_logits=True)):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_embeddings_are_computed_once_per_image_on_disk(finetuned):
    files = list((finetuned["run"] / "embeddings").glob("*.pt"))
    assert len(files) == len(NAMES)  # 6 train + 1 val image, each once
    assert all(torch.load(f, weights_only=True).shape == (1, 256, 64, 64) for f in files)


def test_ram_cache_embeds_an_image_once():
    calls = []

    class Encoder:
        def embed(self, image):
            calls.append(image.shape)
            return type("E", (), {"features": torch.full((1, 256, 64, 64), float(image.sum()))})()

    cache = EmbeddingCache(Encoder())
    a, b = np.zeros((5, 6, 3), np.uint8), np.ones((5, 6, 3), np.uint8)
    keys = [cache.features(x)[0] for x in (a, b, a, b)]
    assert len(calls) == 2 and keys[0] == keys[2] != keys[1] == keys[3]
    assert float(cache.load(keys[1])[0, 0, 0, 0]) == 5 * 6 * 3


def test_bad_sam_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match="sam_checkpoint"):
        seglab.train(task="prompt", model="sam", data=str(PET), verbose=False, project=str(tmp_path))
    with pytest.raises(ConfigError, match="sam_type"):
        seglab.train(task="prompt", model="click_seg", sam_type="vit_b", verbose=False, project=str(tmp_path))
