"""seglab's click model: prompt maps, the model's embed / decode split, the backend's frame, simulated clicks, objects."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.data.prompt import ObjectDataset, open_object_split
from seglab.metrics.clicks import next_click
from seglab.models.prompt import ClickSeg
from seglab.models.prompt.click_maps import box_map, click_maps
from seglab.prompt.backend import PromptBackend
from seglab.prompt.click_backend import ClickBackend
from seglab.tasks.prompt.simulate import first_prompt, prompt_batch_loss

SAMPLE = Path(__file__).resolve().parents[1] / "seglab" / "assets" / "pet_sample"


def blobs_dataset(root: Path, count: int = 4, size: int = 48) -> Path:
    """images/ + masks/ (0 / 255): two separate squares per image, so two regions of one class."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(2, 10, 2)
        mask[y:y + 14, x:x + 14] = 255
        mask[30:44, 28:44] = 255
        image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        image[mask > 0] = [200, 120, 40]
        Image.fromarray(image).save(root / "images" / f"b{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"b{i}.png")
    return root


def test_click_maps_peak_at_clicks_by_polarity_and_ignore_padding():
    points = torch.tensor([[[10.0, 18.0], [30.0, 2.0], [50.0, 50.0]]])  # (x, y) input pixels
    labels = torch.tensor([[1, 0, -1]])
    maps = click_maps(points, labels, 1, (16, 16), 4, radius=3.0)
    # cell (row 4, col 2) has its centre at (x, y) = (10, 18): the positive map is 1 there
    assert maps[0, 0, 4, 2] == pytest.approx(1.0)
    assert maps[0, 0].argmax() == 4 * 16 + 2
    # the negative click (30, 2) is 0 and 2 input pixels from the centre (30, 2) of cell (row 0, col 7)
    assert maps[0, 1, 0, 7] == pytest.approx(np.exp(-(0.0 + 0.0) / 18))
    assert maps[0, 1].argmax() // 16 == 0  # the negative click is in the first row
    assert maps[0, 0, 12, 12] < 1e-3 and maps[0, 1, 12, 12] < 1e-3  # the padding click adds nothing


def test_box_map_marks_cells_whose_centres_are_inside():
    box = box_map(torch.tensor([[4.0, 8.0, 20.0, 12.0]]), 1, (8, 8), 4, "cpu")[0, 0]
    rows, cols = np.nonzero(box.numpy())
    assert set(rows) == {2} and set(cols) == {1, 2, 3, 4}  # centres y=10; x = 6, 10, 14, 18


def test_decode_shares_features_across_prompts_and_matches_one_by_one():
    torch.manual_seed(0)
    model = ClickSeg(channels=16).eval()
    x = torch.randn(1, 3, 64, 64)
    points = torch.tensor([[[10.0, 10.0]], [[40.0, 50.0]]])
    labels = torch.ones(2, 1, dtype=torch.int64)
    with torch.no_grad():
        features = model.embed(x)
        both, iou = model.decode(features, points, labels)
        single, _ = model.decode(features, points[1:], labels[1:])
    assert both.shape == (2, 4, 16, 16) and iou.shape == (2, 4)
    torch.testing.assert_close(both[1:], single)
    assert not torch.allclose(both[0], both[1])  # the clicks change the output


class Recorder(torch.nn.Module):
    """Stands in for the click model and records what decode receives."""

    multiple = 32

    def embed(self, x):
        self.input = x
        return {"s4": torch.zeros(1, 1, x.shape[-2] // 4, x.shape[-1] // 4)}

    def decode(self, features, points, labels, boxes, prev):
        self.points, self.boxes = points, boxes
        batch = points.shape[0] if points is not None else boxes.shape[0]
        h, w = features["s4"].shape[-2:]
        logits = torch.full((batch, 4, h, w), -5.0)
        logits[:, :, : h // 2] = 5.0  # the top half of the square
        return logits, torch.arange(4.0).repeat(batch, 1)


def test_backend_frame_scales_points_and_returns_original_size():
    backend = ClickBackend(Recorder(), 64, [0.5] * 3, [0.5] * 3, "cpu")
    assert isinstance(backend, PromptBackend)
    image = np.zeros((50, 100, 3), np.uint8)  # scale 0.64, resized to 32 x 64, padded to 64 x 64
    embedding = backend.embed(image)
    assert embedding.input_size == (32, 64)
    points = torch.tensor([[[9.0, 4.0]]])
    masks, scores, low_res = backend.decode(embedding, points, torch.ones(1, 1, dtype=torch.int64),
                                            torch.tensor([[0.0, 0.0, 50.0, 25.0]]), None, multimask=True)
    torch.testing.assert_close(backend.model.points, torch.tensor([[[9.5 * 0.64, 4.5 * 0.64]]]))
    torch.testing.assert_close(backend.model.boxes, torch.tensor([[0.0, 0.0, 32.0, 16.0]]))
    assert masks.shape == (1, 3, 50, 100) and low_res.shape == (1, 3, 256, 256)
    assert scores.tolist() == [[1.0, 2.0, 3.0]]  # the multimask candidates are channels 1-3
    # the top half of the 64 x 64 square is the whole 32-row image: every original pixel is in the mask
    assert (masks > 0).all()
    single = backend.decode(embedding, points, torch.ones(1, 1, dtype=torch.int64), None, None, multimask=False)
    assert single[0].shape == (1, 1, 50, 100) and single[1].tolist() == [[0.0]]


def test_first_prompts_fall_inside_the_object_and_negatives_outside():
    mask = np.zeros((40, 40), bool)
    mask[10:30, 5:25] = True
    ignore = np.zeros_like(mask)
    rng = np.random.default_rng(0)
    boxes = 0
    for _ in range(60):
        clicks, box = first_prompt(mask, ignore, rng)
        if box is not None:
            boxes += 1
            assert abs(box[0] - 5) <= 2 and abs(box[3] - 30) <= 2 and not clicks
            continue
        assert clicks[0].is_positive
        for c in clicks:
            assert mask[c.y, c.x] == c.is_positive
    assert 0 < boxes < 60


def test_simulated_click_loss_is_finite_and_trains_every_part(tmp_path):
    torch.manual_seed(0)
    from types import SimpleNamespace
    from seglab.engine.device import Runtime

    model = ClickSeg(channels=16)
    runtime = Runtime.from_config("cpu", "fp32", False)
    trainer = SimpleNamespace(module=model, runtime=runtime,
                              preprocess={"mean": model.normalization["mean"], "std": model.normalization["std"]})
    dataset = ObjectDataset([open_object_split(blobs_dataset(tmp_path / "d"), "train", val_fraction=0.25)], 64, True)
    images, targets = zip(*[dataset[(i, i)][:2] for i in range(2)])
    batch = torch.stack(images), {k: torch.stack([t[k] for t in targets]) for k in targets[0]}
    loss = prompt_batch_loss(trainer, *batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.prompt_fine[0].weight.grad.abs().sum() > 0  # the click encoder learns from the loss
    assert model.encoder.stem_conv.weight.grad.abs().sum() > 0


def test_an_ambiguous_first_click_trains_the_multimask_candidates_whatever_the_rounds(tmp_path, monkeypatch):
    """The candidates the first click picks from (channels 1-3) get gradients on every batch whose first
    prompt is one positive click, also when corrective rounds follow; a box prompt leaves them untrained."""
    from types import SimpleNamespace
    from seglab.engine.device import Runtime
    from seglab.metrics.clicks import Click
    import seglab.tasks.prompt.simulate as simulate

    dataset = ObjectDataset([open_object_split(blobs_dataset(tmp_path / "d"), "train", val_fraction=0.25)], 64, True)
    images, targets = zip(*[dataset[(i, i)][:2] for i in range(2)])
    batch = torch.stack(images), {k: torch.stack([t[k] for t in targets]) for k in targets[0]}

    def candidate_grad(prompt, rounds):
        torch.manual_seed(0)
        model = ClickSeg(channels=16)
        trainer = SimpleNamespace(module=model, runtime=Runtime.from_config("cpu", "fp32", False),
                                  preprocess={"mean": model.normalization["mean"], "std": model.normalization["std"]})
        monkeypatch.setattr(simulate, "first_prompt", lambda mask, ignore, rng: prompt(mask))
        monkeypatch.setattr(simulate, "corrective_rounds", lambda rng: rounds)
        simulate.prompt_batch_loss(trainer, *batch).backward()
        return model.mask_head.weight.grad[1:].abs().sum().item(), model.mask_head.weight.grad[0].abs().sum().item()

    def one_click(mask):
        ys, xs = np.nonzero(mask)
        return [Click(int(ys[len(ys) // 2]), int(xs[len(xs) // 2]), True)], None

    def a_box(mask):
        ys, xs = np.nonzero(mask)
        return [], [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]

    for rounds in (0, 2):
        multi, single = candidate_grad(one_click, rounds)
        assert multi > 0 and single > 0, rounds
    multi, single = candidate_grad(a_box, 2)
    assert multi == 0 and single > 0


def test_objects_regions_of_a_class_and_the_pet_as_one_object(tmp_path):
    split = open_object_split(blobs_dataset(tmp_path / "d"), "all")
    objects = split.images[0].load()
    assert split.format == "folder" and objects.count == 2  # two connected squares of the one class
    pet = open_object_split(SAMPLE, "test")
    first = pet.images[0].load()
    assert pet.format == "pet" and first.count == 1 and first.ignore.any()  # the trimap border is ignored
    trimap = np.asarray(Image.open(SAMPLE / "annotations" / "trimaps" / f"{pet.images[0].name}.png"))
    np.testing.assert_array_equal(first.ignore, trimap == 3)
    np.testing.assert_array_equal(first.mask(1), trimap == 1)


def test_object_samples_are_square_with_padding_ignored(tmp_path):
    split = open_object_split(SAMPLE, "test")
    dataset = ObjectDataset([split], 64, augment=False)
    image, target, _ = dataset[(0, 1)]
    h, w = np.asarray(Image.open(split.images[0].image)).shape[:2]
    height, width = round(h * 64 / max(h, w)), round(w * 64 / max(h, w))
    assert image.shape == (3, 64, 64) and target["mask"].shape == (64, 64)
    assert target["ignore"][height:, :].all() and target["ignore"][:, width:].all()
    assert target["mask"].sum() > 0 and not (target["mask"].bool() & target["ignore"]).any()


def test_next_click_on_empty_prediction_is_inside():  # the loop's first corrective click
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    click = next_click(mask, np.zeros_like(mask))
    assert click.is_positive and mask[click.y, click.x]
