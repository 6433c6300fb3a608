"""InstanceDataset: resize policy, torchvision targets, seeded paired augmentation, collate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from seglab.data.instance import InstanceDataset, collate, open_instance_split
from seglab.data.instance.augment import COLOUR_PRESETS, boxes_from_masks
from seglab.data.instance.spec import boxes_of
from seglab.data.io import DataError
from seglab.engine.sampler import EpochBatchSampler
from test_instance_data_layouts import HEIGHT, WIDTH, rect, save_ids, write_penn_fudan

COLOURS = [(250, 20, 20), (20, 250, 20), (20, 20, 250)]  # the image colour of each class


def write_coloured(root, n=3):
    """Generic folder, 3 classes; each instance is painted in its class colour on a black image."""
    classes = {}
    for k in range(n):
        masks = [rect(2, 2, 14, 12), rect(20, 6 + k, 34, 24), rect(36, 20, 46, 38), rect(4, 26, 16, 36)]
        labels = [(k + j) % 3 for j in range(len(masks))]
        pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        for mask, label in zip(masks, labels):
            pixels[mask] = COLOURS[label]
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "images" / f"s{k}.png")
        save_ids(root / "masks" / f"s{k}.png", masks)
        classes[f"s{k}"] = {str(j + 1): label for j, label in enumerate(labels)}
    meta = {"task": "instance", "classes": ["red", "green", "blue"], "instance_classes": classes}
    (root / "dataset.json").write_text(json.dumps(meta))
    return open_instance_split(root, "all")


def test_longer_side_is_the_size_and_masks_follow_exactly(tmp_path):
    drawn = write_penn_fudan(tmp_path, n=3)
    split = open_instance_split(tmp_path, "all")
    dataset = InstanceDataset(split, size=2 * WIDTH)
    for index, item in enumerate(split.items):
        image, target, returned = dataset[index]
        assert returned == index and image.dtype == torch.uint8
        assert image.shape == (3, 2 * HEIGHT, 2 * WIDTH)  # aspect kept
        expected = np.stack([np.kron(m, np.ones((2, 2), bool)) for m in drawn[item.name]])
        np.testing.assert_array_equal(target["masks"].numpy().astype(bool), expected)
        assert target["masks"].dtype == torch.uint8 and target["boxes"].dtype == torch.float32
        np.testing.assert_array_equal(target["boxes"].numpy(), boxes_of(expected))
        assert target["labels"].tolist() == [1] * len(expected)  # 1-based: 0 is the background
        assert target["area"].tolist() == expected.reshape(len(expected), -1).sum(1).tolist()
        assert target["iscrowd"].tolist() == [0] * len(expected) and target["image_id"] == item.image_id
    assert InstanceDataset(split, size=None)[0][0].shape == (3, HEIGHT, WIDTH)


def test_instances_that_vanish_when_resized_are_dropped_with_their_labels(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (WIDTH, HEIGHT)).save(root / "images" / "a.png")
    save_ids(root / "masks" / "a.png", [rect(1, 1, 2, 2), rect(10, 10, 30, 30)])  # a 1-pixel instance first
    meta = {"task": "instance", "classes": ["dot", "square"], "instance_classes": {"a": {"1": "dot", "2": "square"}}}
    (root / "dataset.json").write_text(json.dumps(meta))
    split = open_instance_split(root, "all")
    _, target, _ = InstanceDataset(split, size=WIDTH // 4)[0]
    assert target["labels"].tolist() == [2] and target["masks"].shape[0] == 1
    _, full, _ = InstanceDataset(split, size=None)[0]
    assert full["labels"].tolist() == [1, 2]


def colour_agreement(image: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of mask pixels whose image colour is nearest to the colour of the mask's class."""
    palette = torch.tensor(COLOURS, dtype=torch.float32)
    pixels = image.permute(1, 2, 0).float()
    nearest = ((pixels[:, :, None, :] - palette) ** 2).sum(-1).argmin(-1)  # [H, W]
    hits = total = 0
    for mask, label in zip(masks.bool(), labels):
        hits += int((nearest[mask] == label - 1).sum())
        total += int(mask.sum())
    return hits / max(total, 1)


@pytest.mark.parametrize("preset", ["flip", "flips", "light", "strong", "microscopy"])
def test_augmentation_is_seeded_and_keeps_image_masks_boxes_and_labels_together(tmp_path, preset):
    split = write_coloured(tmp_path)
    dataset = InstanceDataset(split, size=64, augment=preset)
    plain = dataset[0]
    outputs = []
    for seed in range(12):
        image, target, _ = dataset[(0, seed)]
        again_image, again_target, _ = dataset[(0, seed)]
        assert torch.equal(image, again_image) and torch.equal(target["masks"], again_target["masks"])
        masks = target["masks"]
        assert masks.shape[1:] == image.shape[1:] and len(masks) == len(target["labels"]) == len(target["boxes"])
        assert masks.flatten(1).any(1).all()  # empty instances are dropped
        assert torch.equal(target["boxes"], boxes_from_masks(masks))
        assert ((target["boxes"][:, 2:] > target["boxes"][:, :2]).all())
        assert (target["boxes"][:, 2] <= image.shape[2]).all() and (target["boxes"][:, 3] <= image.shape[1]).all()
        if preset not in COLOUR_PRESETS:  # colour jitter moves colours; geometry is checked by the other presets
            assert colour_agreement(image, masks, target["labels"]) > 0.9
        outputs.append((image, len(masks)))
    assert any(not torch.equal(out, plain[0]) for out, _ in outputs)  # the seeds do augment
    if preset == "strong":  # its crops (25-100% of the area) cut some instances away: they are dropped (checked above), not kept empty
        assert min(n for _, n in outputs) < len(plain[1]["labels"])
    if preset == "microscopy":  # some seeds turn the image grey (equal channels), some invert it (the black ground turns light)
        assert any(torch.equal(out[0], out[1]) and torch.equal(out[1], out[2]) for out, _ in outputs)
        assert any(float(out.float().median()) > 128 for out, _ in outputs)
        assert all(float(out.float().median()) < 60 or float(out.float().median()) > 128 for out, _ in outputs)
    assert torch.equal(dataset[0][0], plain[0])  # a plain index is never augmented


def test_boxes_from_masks_agrees_with_the_numpy_boxes():
    masks = np.zeros((3, 9, 11), bool)
    masks[0, 2:5, 3:8] = True
    masks[1, 0, 10] = True
    np.testing.assert_array_equal(boxes_from_masks(torch.from_numpy(masks)).numpy(), boxes_of(masks))
    np.testing.assert_array_equal(boxes_of(masks), [[3, 2, 8, 5], [10, 0, 11, 1], [0, 0, 0, 0]])


def test_dataloader_with_the_epoch_sampler_and_collate(tmp_path):
    write_penn_fudan(tmp_path, n=5)
    dataset = InstanceDataset(open_instance_split(tmp_path, "all"), size=32, augment=True)
    loader = DataLoader(dataset, batch_sampler=EpochBatchSampler(len(dataset), 2, seed=3), collate_fn=collate)
    batches = list(loader)
    assert len(batches) == 2
    images, targets, indices = batches[0]
    assert isinstance(images, list) and isinstance(targets, list) and len(images) == len(targets) == len(indices) == 2
    assert all(image.shape[0] == 3 and max(image.shape[1:]) == 32 for image in images)
    again = list(DataLoader(dataset, batch_sampler=EpochBatchSampler(len(dataset), 2, seed=3), collate_fn=collate))
    assert all(torch.equal(a, b) for a, b in zip(batches[1][0], again[1][0]))


def test_preload_with_skip_bad_leaves_out_bad_items(tmp_path):
    write_penn_fudan(tmp_path, n=3)
    save_ids(tmp_path / "PedMasks" / "FudanPed00002_mask.png", [rect(1, 1, 4, 4, width=WIDTH + 2)])
    split = open_instance_split(tmp_path, "all")
    with pytest.raises(DataError, match="FudanPed00002_mask.png: mask is 50x40"):
        InstanceDataset(split, 32, cache=True).preload()
    dataset = InstanceDataset(split, 32, skip_bad=True).preload()
    assert len(dataset) == 2
    assert dataset.skipped[0][0] == tmp_path / "PedMasks" / "FudanPed00002_mask.png"
    assert dataset.skipped[0][1].startswith("mask is 50x40")


def test_a_torchvision_mask_rcnn_takes_the_batch_and_returns_finite_losses(tmp_path):
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    split = write_coloured(tmp_path)
    dataset = InstanceDataset(split, size=64, augment="light")
    images, targets, _ = collate([dataset[(i, 7)] for i in range(len(dataset))])
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1), torch.nn.ReLU())
    backbone.out_channels = 8
    torch.manual_seed(0)
    model = MaskRCNN(backbone, num_classes=len(split.classes) + 1, min_size=64, max_size=64,
                     rpn_anchor_generator=AnchorGenerator(((8, 16, 32),), ((0.5, 1.0, 2.0),)),
                     box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2), mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
                     rpn_batch_size_per_image=32, box_batch_size_per_image=16)
    model.train()
    losses = model([image.float() / 255 for image in images], targets)
    assert {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    assert all(torch.isfinite(value) for value in losses.values())
