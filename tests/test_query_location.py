"""The query model's place per query (`located`): a Gaussian log-prior at a moving centre on the mask logits."""
from __future__ import annotations

import math

import pytest
import torch

from seglab.models.query import MaskFormerInstance, MaskFormerPanoptic, MaskFormerSemantic
from seglab.models.query.decoder import LOG_SPREAD, QueryDecoder, grid, reference_grid
from seglab.models.query.pixel_decoder import sine_positions

TINY = {"encoder": "mobilenet_v2", "num_queries": 4, "decoder_channels": 64, "mask_points": 128}


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_grid_is_the_normalised_pixel_centres():
    x, y = grid(torch.zeros(2, 5, 3, 4))
    assert x.shape == (2, 1, 1, 4) and y.shape == (2, 1, 3, 1)
    assert torch.allclose(x.flatten()[:4], torch.tensor([0.125, 0.375, 0.625, 0.875]))
    assert torch.allclose(y[0].flatten(), torch.tensor([1 / 6, 0.5, 5 / 6]))


def decoder(located: bool) -> QueryDecoder:
    torch.manual_seed(0)
    return QueryDecoder(num_classes=1, num_queries=2, dim=32, mask_dim=32, layers=1, heads=1, ffn=64, levels=1,
                        located=located)


def test_a_located_query_starts_at_its_reference_point_and_its_head_moves_and_narrows_it():
    dec = decoder(True)
    with torch.no_grad():
        dec.reference.weight.copy_(torch.tensor([[logit(7.5 / 32), logit(11.5 / 16)], [logit(28.5 / 32), logit(1.5 / 16)]]))
    pixels = torch.zeros(1, 32, 16, 32)  # no appearance: the mask is the prior alone
    queries = torch.randn(1, 2, 32)
    masks = dec.predict(queries, pixels)[1]
    assert masks.shape == (1, 2, 16, 32)
    peaks = [divmod(int(m.argmax()), 32) for m in masks[0]]
    assert peaks == [(11, 7), (1, 28)]  # (row, column): the reference points are these pixels' centres
    assert float(masks.max()) <= 0 and float(masks.min()) > -2.0  # spread = the image at the start: at most (1^2 + 1^2)
    with torch.no_grad():  # the head shifts the first query right by one logit and narrows it 10x
        dec.location_head[-1].bias.copy_(torch.tensor([1.0, 0.0, dec.spread_logit(0.1), dec.spread_logit(0.1)]))
    moved = dec.predict(queries, pixels)[1][0, 0]
    y, x = divmod(int(moved.argmax()), 32)
    assert y == 11 and abs((x + 0.5) / 32 - torch.sigmoid(torch.tensor(logit(7.5 / 32) + 1.0)).item()) < 1 / 32
    assert float(moved.min()) < -40  # far from the centre, the prior rules the pixel out


def test_the_spread_is_clamped_so_logits_stay_finite():
    dec = decoder(True)
    with torch.no_grad():
        dec.location_head[-1].bias.copy_(torch.tensor([0.0, 0.0, -50.0, -50.0]))
    with torch.no_grad():
        masks = dec.predict(torch.randn(1, 2, 32), torch.zeros(1, 32, 8, 8))[1]
    assert torch.isfinite(masks).all()
    assert float(masks.min()) >= -2 * math.exp(-2 * LOG_SPREAD[0])


def test_without_a_place_the_masks_are_the_dot_product_alone():
    dec = decoder(False)
    assert not hasattr(dec, "location_head")
    pixels, queries = torch.randn(1, 32, 4, 4), torch.randn(1, 2, 32)
    masks = dec.predict(queries, pixels)[1]
    expected = torch.einsum("nqc,nchw->nqhw", dec.mask_head(dec.norm(queries)), pixels)
    assert torch.allclose(masks, expected)


def test_located_cross_attention_values_carry_the_position_code():
    """What a located query attends to tells it where: values = content + sine position code (keys' code)."""
    for located in (True, False):
        dec = decoder(located).eval()
        seen = {}
        cross = dec.layers[0].cross
        original = cross.forward
        cross.forward = lambda q, k, v, blocked: seen.update(key=k, value=v) or original(q, k, v, blocked)
        level = torch.randn(1, 32, 4, 6)
        dec(torch.randn(1, 32, 8, 12), [level])
        content = level.flatten(2).transpose(1, 2) + dec.level_embed.weight[0]
        position = sine_positions(level).flatten(2).transpose(1, 2)
        assert torch.allclose(seen["key"], content + position)
        assert torch.allclose(seen["value"], content + position if located else content)


def test_things_models_are_located_and_the_semantic_one_is_not():
    assert MaskFormerInstance(1, **TINY).decoder.located
    assert MaskFormerPanoptic(2, [False, True], **TINY).decoder.located
    semantic = {k: v for k, v in TINY.items() if k != "mask_points"}
    assert not MaskFormerSemantic(3, **semantic).decoder.located


def test_queries_start_on_a_grid_over_the_image_at_the_given_spread():
    points = reference_grid(400)
    assert points.shape == (400, 2)
    assert torch.allclose(points[:20, 0], (torch.arange(20) + 0.5) / 20) and torch.all(points[:20, 1] == 0.025)
    assert len({tuple(p) for p in points.tolist()}) == 400 and reference_grid(5).shape == (5, 2)
    torch.manual_seed(0)
    dec = QueryDecoder(num_classes=1, num_queries=4, dim=32, mask_dim=32, layers=1, heads=1, ffn=64, levels=1,
                       located=True, initial_spread=0.125)
    masks = dec.predict(torch.randn(1, 4, 32), torch.zeros(1, 32, 18, 18))[1][0]  # the prior alone
    peaks = [divmod(int(m.argmax()), 18) for m in masks]
    assert peaks == [(4, 4), (4, 13), (13, 4), (13, 13)]  # the 2x2 grid's cell centres: 0.25 / 0.75 of 18 px
    assert float(masks[0, 4, 4]) == pytest.approx(0.0, abs=1e-5)
    # two pixels right of the first centre: -(distance / spread)^2
    assert float(masks[0, 4, 6]) == pytest.approx(-((2 / 18) / 0.125) ** 2, abs=1e-4)


def test_the_model_passes_query_spread_to_its_queries_and_refuses_a_spread_out_of_range():
    model = MaskFormerPanoptic(2, [False, True], query_spread=0.03, **TINY)
    assert model.decoder.location_head[-1].bias[2:].tolist() == pytest.approx([model.decoder.spread_logit(0.03)] * 2)
    with pytest.raises(ValueError, match="initial spread"):
        MaskFormerInstance(1, query_spread=0.0, **TINY)


def test_a_spread_moves_smoothly_over_the_whole_range_and_keeps_a_gradient_near_the_bounds():
    """Session 10: a clamped spread pushed to e^1 had no gradient back; the sigmoid-bounded one always has."""
    torch.manual_seed(0)
    dec = QueryDecoder(num_classes=1, num_queries=1, dim=32, mask_dim=32, layers=1, heads=1, ffn=64, levels=1,
                       located=True, initial_spread=0.03)
    pixels, queries = torch.zeros(1, 32, 17, 17), torch.randn(1, 1, 32)  # one query: centred on pixel (8, 8)
    widths = {}
    for name, raw in (("start", dec.spread_logit(0.03)), ("wide", 30.0), ("narrow", -30.0)):
        with torch.no_grad():
            dec.location_head[-1].bias[2:] = raw
            masks = dec.predict(queries, pixels)[1][0, 0]  # the log-prior alone
        assert float(masks[8, 8]) == pytest.approx(0.0, abs=1e-6)
        widths[name] = (1 / 17) / math.sqrt(-float(masks[9, 8]))  # one row below: -(dy / sy)^2
    assert widths["start"] == pytest.approx(0.03, rel=1e-3)
    assert widths["wide"] == pytest.approx(math.exp(LOG_SPREAD[1]), rel=1e-2)
    assert widths["narrow"] == pytest.approx(math.exp(LOG_SPREAD[0]), rel=1e-2)
    dec.location_head[-1].bias.data[2:] = 3.0  # near the upper bound: the loss can still narrow it
    dec.predict(queries, pixels)[1].sum().backward()
    assert float(dec.location_head[-1].bias.grad[2:].abs().min()) > 0
