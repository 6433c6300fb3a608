"""Sliding-window inference: tile placement, blending windows, bounded memory, exactness."""
import numpy as np
import pytest
import torch

from seglab.inference.resample import resized_bands
from seglab.inference.tiling import TileStats, assemble, blend_window, tile_starts, tiled_bands


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 0.25), (32, 32, 0.5), (20, 32, 0.25), (1000, 256, 0.0),
                                                 (257, 256, 0.25), (8000, 256, 0.25)])
def test_tiles_cover_the_image_with_at_least_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    tile = min(tile, length)
    assert starts[0] == 0 and starts[-1] + tile == length
    gaps = np.diff(starts)
    assert (gaps > 0).all() and (gaps <= int(tile * (1 - overlap))).all()


def test_windows():
    assert torch.equal(blend_window(5, 7, "constant"), torch.ones(5, 7))
    w = blend_window(64, 32, "gaussian")
    assert w.shape == (64, 32) and w.min() >= 1e-3 and w.max() <= 1
    assert torch.allclose(w, w.flip(0)) and torch.allclose(w, w.flip(1))
    assert w[32, 16] > w[0, 16] > 0
    with pytest.raises(ValueError, match="blend"):
        blend_window(4, 4, "median")


def pixelwise_probs(crops: torch.Tensor) -> torch.Tensor:
    """A 'model' whose output at a pixel depends only on that pixel: tiling must reproduce it exactly."""
    logits = torch.stack([crops[:, 0].float() / 64, crops[:, 1].float() / 50, crops[:, 2].float() / 80], 1)
    return logits.softmax(1)


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize("height,width,tile", [(70, 90, 32), (31, 200, 32), (64, 64, 64), (10, 12, 32)])
def test_tiling_a_pixelwise_model_is_exact(height, width, tile, blend):
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    want = pixelwise_probs(image[None])[0]
    probs = np.zeros((3, height, width), dtype=np.float32)
    labels = assemble(tiled_bands(image, pixelwise_probs, 3, tile, 0.25, blend, batch=3), height, width, probs)
    assert np.allclose(probs, want.numpy(), atol=1e-5)
    assert (labels == want.argmax(0).numpy()).mean() > 0.999


def test_bands_are_disjoint_and_cover_every_row():
    image = torch.zeros(3, 150, 40, dtype=torch.uint8)
    rows = [(top, band.shape[1]) for top, band in tiled_bands(image, pixelwise_probs, 3, 32, 0.25, "gaussian")]
    assert rows[0][0] == 0 and sum(r for _, r in rows) == 150
    assert all(top + r == nxt for (top, r), (nxt, _) in zip(rows, rows[1:]))


def test_memory_is_bounded_by_a_band_of_tiles_not_the_image():
    """The accumulator is (C + 1) x tile x W float32 whatever the height; batches hold `batch` tiles."""
    C, tile, batch = 3, 32, 4
    sizes = {}
    for height in (64, 640, 2000):
        stats = TileStats()
        image = torch.zeros(3, height, 300, dtype=torch.uint8)
        for _ in tiled_bands(image, pixelwise_probs, C, tile, 0.25, "gaussian", batch, stats):
            pass
        assert stats.buffer_bytes == (C + 1) * tile * 300 * 4
        assert stats.peak_band_bytes <= C * tile * 300 * 4
        assert stats.peak_batch_bytes <= batch * C * tile * tile * 4
        sizes[height] = (stats.buffer_bytes, stats.peak_band_bytes)
    assert sizes[64] == sizes[2000]  # 31x the rows, same memory


def test_an_8000_pixel_wide_image_needs_a_few_tiles_of_memory():
    """8000 x 8000 at tile 256: the full-image probabilities would be 768 MB; the sliding buffer is 33 MB."""
    stats = TileStats()
    image = torch.zeros(3, 1, 1, dtype=torch.uint8).expand(3, 8000, 8000)  # no 192 MB allocation
    bands = tiled_bands(image, lambda x: torch.full((len(x), 3, *x.shape[-2:]), 1 / 3), 3, 256, 0.25,
                        "gaussian", 8, stats)
    for _, band in zip(range(2), bands):  # the bound is reached in the first rows; the rest repeat it
        pass
    assert stats.buffer_bytes == 4 * 256 * 8000 * 4 < 3 * 8000 * 8000 * 4 / 20


@pytest.mark.parametrize("small,size", [((7, 9), (70, 100)), ((32, 32), (8000, 31)), ((40, 50), (13, 17)),
                                        ((32, 48), (32, 48)), ((1, 5), (9, 5))])
def test_resizing_back_in_bands_is_bilinear_resizing_in_one_piece(small, size):
    scores = torch.rand(3, *small, generator=torch.Generator().manual_seed(1))
    want = torch.nn.functional.interpolate(scores[None], size=size, mode="bilinear", align_corners=False)[0]
    for band_pixels in (1, 97, 1 << 21):
        bands = list(resized_bands(scores, size, band_pixels))
        got = torch.cat([band for _, band in bands], 1)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
        assert [top for top, _ in bands] == list(range(0, size[0], max(1, band_pixels // size[1])))
        assert max(band.shape[1] for _, band in bands) * size[1] <= max(band_pixels, size[1])


def test_bands_do_not_change_the_resized_values():
    scores = torch.rand(4, 20, 30, generator=torch.Generator().manual_seed(2))
    whole = torch.cat([b for _, b in resized_bands(scores, (301, 403))], 1)
    banded = torch.cat([b for _, b in resized_bands(scores, (301, 403), band_pixels=403 * 7)], 1)
    assert torch.equal(whole, banded)
