"""Paired augmentation presets on torchvision.transforms.v2: pure functions of the per-sample seed."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seglab.config import make_config
from seglab.data import SegmentationDataset, open_split
from seglab.data.augment import PRESETS, augment_pair, build_augment, preset_name
from seglab.data.folder import load_split
from seglab.engine.sampler import EpochBatchSampler

S = 64


def blocks(size: int = S) -> tuple[torch.Tensor, torch.Tensor]:
    """A mask of large label blocks (0, 1, 2) and an image whose red channel is 100 x the label."""
    y, x = np.mgrid[0:size, 0:size]
    mask = ((x // 16 + 2 * (y // 16)) % 3).astype(np.uint8)
    image = np.stack([mask * 100, np.full_like(mask, 50), x.astype(np.uint8)]).astype(np.uint8)
    return torch.from_numpy(image), torch.from_numpy(mask)


def test_preset_names():
    assert set(PRESETS) == {"none", "flip", "flips", "light", "strong", "microscopy"}
    assert preset_name(True) == "light" and preset_name(False) == "none" and preset_name("STRONG") == "strong"
    assert build_augment("none", S) is None and build_augment(False, S) is None
    with pytest.raises(KeyError, match="unknown augmentation preset 'heavy'. Valid presets: none, flip, flips, light, strong, microscopy"):
        build_augment("heavy", S)


@pytest.mark.parametrize("preset", ["flip", "flips", "light", "strong", "microscopy"])
def test_same_seed_same_pair_and_the_global_rng_is_untouched(preset):
    transform = build_augment(preset, S, 255)
    image, mask = blocks()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = augment_pair(transform, image, mask, seed=42)
    assert torch.equal(torch.get_rng_state(), state)  # callers' random streams are not consumed
    torch.rand(17)  # a different global state must not change the result
    again = augment_pair(transform, image, mask, seed=42)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    others = [augment_pair(transform, image, mask, seed=s) for s in range(6)]
    assert any(not torch.equal(o[0], first[0]) for o in others)
    for out_image, out_mask in [first, *others]:
        assert out_image.dtype == torch.uint8 and out_image.shape == (3, S, S)
        assert out_mask.dtype == torch.uint8 and out_mask.shape == (S, S)
        assert type(out_image) is torch.Tensor and out_image.is_contiguous()
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, 255}  # nearest neighbour: no new labels


def test_flips_gives_the_four_mirror_images_with_the_mask_alongside():
    transform = build_augment("flips", S, 255)
    image, mask = blocks()
    seen = set()
    for seed in range(24):
        out_image, out_mask = augment_pair(transform, image, mask, seed)
        for name, dims in {"none": [], "h": [-1], "v": [-2], "hv": [-2, -1]}.items():
            if torch.equal(out_image, image.flip(dims) if dims else image):
                assert torch.equal(out_mask, mask.flip(dims) if dims else mask)
                seen.add(name)
    assert seen == {"none", "h", "v", "hv"}


def test_microscopy_turns_some_images_grey_and_some_negative_and_leaves_the_mask_labels():
    transform = build_augment("microscopy", S, 255)
    image, mask = blocks()
    outs = [augment_pair(transform, image, mask, seed) for seed in range(24)]
    grey = [o for o, _ in outs if torch.equal(o[0], o[1]) and torch.equal(o[1], o[2])]
    assert grey and len(grey) < len(outs)
    light_ground = [o for o, _ in outs if float(o.float().median()) > float(image.float().median()) + 60]
    assert light_ground and len(light_ground) < len(outs)  # inverted: the dark ground turned light
    assert all(set(m.unique().tolist()) <= {0, 1, 2, 255} for _, m in outs)


def test_runs_on_one_thread_and_restores_the_callers_thread_count():
    transform = build_augment("strong", S, 255)
    image, mask = blocks()
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (2, 1):
            torch.set_num_threads(threads)
            results.append(augment_pair(transform, image, mask, seed=3))
            assert torch.get_num_threads() == threads
        assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    finally:
        torch.set_num_threads(before)


def test_light_moves_image_and_mask_together():
    """Away from label edges, the image's red channel still equals 100 x the mask's label."""
    transform = build_augment("light", S)
    image, mask = blocks()
    flips = 0
    for seed in range(12):
        out_image, out_mask = augment_pair(transform, image, mask, seed)
        m = out_mask.numpy().astype(int)
        interior = np.ones_like(m, dtype=bool)
        for dy in (-2, 0, 2):
            for dx in (-2, 0, 2):
                interior &= np.roll(np.roll(m, dy, 0), dx, 1) == m
        interior[:2], interior[-2:], interior[:, :2], interior[:, -2:] = False, False, False, False
        red = out_image[0].numpy().astype(int)
        assert np.abs(red[interior] - 100 * m[interior]).max() <= 2
        flips += int(out_image[2, 0, 0] > out_image[2, 0, -1])  # the x ramp runs the other way after a flip
    assert 0 < flips < 12


def test_flip_mirrors_image_and_mask_together_and_nothing_else():
    transform = build_augment("flip", S)
    image, mask = blocks()
    flipped = 0
    for seed in range(12):
        out_image, out_mask = augment_pair(transform, image, mask, seed)
        if torch.equal(out_image, image):
            assert torch.equal(out_mask, mask)
        else:
            assert torch.equal(out_image, image.flip(-1)) and torch.equal(out_mask, mask.flip(-1))
            flipped += 1
    assert 0 < flipped < 12


def test_strong_pads_the_mask_with_the_ignore_index():
    transform = build_augment("strong", S, ignore_index=200)
    image, mask = blocks()
    padded = 0
    for seed in range(40):
        out_image, out_mask = augment_pair(transform, image, mask, seed)
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, 200}
        if (out_mask == 200).any():
            padded += 1
            assert (out_mask == 200).float().mean() < 0.5
    assert padded >= 5  # about half the samples go through the rotation / zoom-out step


def test_dataset_presets_and_workers_give_the_same_batches(make_folder):
    spec = load_split(make_folder([f"s{i}" for i in range(6)]), "all")
    plain = SegmentationDataset(spec, 32, augment="none").preload()
    assert plain.transform is None and not plain.augment
    assert torch.equal(plain[(0, 5)][0], plain[0][0])  # no augmentation even with a seed
    dataset = SegmentationDataset(spec, 32, augment="strong").preload()
    assert dataset.preset == "strong" and dataset.augment
    batches = {}
    for workers in (0, 1):
        sampler = EpochBatchSampler(len(dataset), 3, seed=7)
        sampler.set_epoch(1)
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers)
        batches[workers] = [(images.clone(), masks.clone(), index.clone()) for images, masks, index in loader]
    for (a, b, c), (x, y, z) in zip(batches[0], batches[1]):
        assert torch.equal(a, x) and torch.equal(b, y) and torch.equal(c, z)


def test_config_augment_and_preset(make_folder):
    root = make_folder([f"s{i}" for i in range(4)])
    assert make_config().augment_preset == "light"
    cfg = make_config(data=str(root), augment_preset="strong")
    assert SegmentationDataset(open_split(cfg, "all"), 16, augment=cfg.augment_preset).preset == "strong"
