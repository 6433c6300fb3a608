"""The bottom-up panoptic model (panoptic_deeplab): shapes and output contract, centre / offset targets against
scipy, grouping of hand-made raw outputs, a short overfit scored with PanopticEvaluator, ONNX parity of the raw
network, encoders, checkpoint rebuild. Small images (32-96 px), random init."""
import io
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

import seglab.encoders
from seglab.metrics.panoptic import PanopticEvaluator, from_semantic_instance
from seglab.models.panoptic import PANOPTIC_MODELS, build_panoptic_model
from seglab.models.panoptic.bottomup_loss import centre_targets
from seglab.models.panoptic.bottomup_post import find_centres, panoptic_from_raw

IS_THING = [False, True, True]  # background (stuff), two thing classes
SMALL = {"decoder_channels": 32, "head_width": 16}


def make(encoder="efficientnet_lite0", seed=0, **extra):
    torch.manual_seed(seed)
    return build_panoptic_model("panoptic_deeplab", {"num_classes": 3, "is_thing": IS_THING, "encoder": encoder,
                                                     **SMALL, **extra})


def disc_scene(size=(64, 64), discs=((20, 22, 9, 1), (40, 44, 10, 1), (50, 14, 6, 2), (12, 52, 5, 1))):
    """A normalised image with discs (cx, cy, r, class) on a dark background, its target maps."""
    h, w = size
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    semantic = torch.zeros(h, w, dtype=torch.long)
    instances = torch.zeros(h, w, dtype=torch.long)
    image = torch.full((3, h, w), -1.0)
    colours = {1: torch.tensor([1.0, 0.6, -0.4]), 2: torch.tensor([-0.3, 1.0, 0.8])}
    for i, (cx, cy, r, c) in enumerate(discs):
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        semantic[inside], instances[inside] = c, i + 1
        image[:, inside] = colours[c][:, None]
    image += 0.1 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    return image, {"semantic": semantic, "instances": instances}


def canonical(target):
    ids, segments = from_semantic_instance(target["semantic"].numpy(), target["instances"].numpy(), IS_THING)
    return {"segment_ids": ids, "segments": segments}


def test_registered():
    assert "panoptic_deeplab" in PANOPTIC_MODELS
    with pytest.raises(KeyError, match="Valid panoptic models"):
        build_panoptic_model("nope", {})


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="one flag per class"):
        build_panoptic_model("panoptic_deeplab", {"num_classes": 3, "is_thing": [False, True]})
    with pytest.raises(ValueError, match="no class as a thing"):
        build_panoptic_model("panoptic_deeplab", {"num_classes": 2, "is_thing": [False, False]})
    model = make()
    with pytest.raises(ValueError, match="needs targets"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(KeyError, match="instances"):
        model(torch.zeros(1, 3, 32, 32), [{"semantic": torch.zeros(32, 32, dtype=torch.long)}])


def test_raw_shapes_and_eval_contract_on_an_odd_size():
    model = make().eval()
    x = torch.randn(2, 3, 70, 90)  # padded to 96 x 96 inside
    with torch.no_grad():
        semantic, heatmap, offsets = model.forward_raw(x)
        out = model(x)
    assert model.multiple == 32 and model.output_stride == 4
    assert semantic.shape == (2, 3, 24, 24) and heatmap.shape == (2, 1, 24, 24) and offsets.shape == (2, 2, 24, 24)
    assert len(out) == 2
    for image in out:
        ids = image["segment_ids"]
        assert ids.shape == (70, 90) and ids.dtype == torch.int64
        listed = {s["id"] for s in image["segments"]}
        assert set(torch.unique(ids).tolist()) - {0} == listed
        for s in image["segments"]:
            assert 0 <= s["score"] <= 1 and s["iscrowd"] == 0 and 0 <= s["category_id"] < 3


def test_centre_targets_match_scipy_centres_of_mass():
    instances = torch.zeros(40, 48, dtype=torch.long)
    instances[5:25, 4:9] = 7
    instances[20:25, 9:20] = 7  # an L shape: its centre of mass is not its box centre
    instances[28:37, 30:46] = 3  # non-contiguous ids
    instances[2:5, 40:43] = 12  # a tiny one: sigma_min
    heatmap, offsets = centre_targets(instances, sigma_scale=0.125, sigma_min=2.0, sigma_max=8.0)
    ids = [7, 3, 12]
    centres = ndimage.center_of_mass(np.ones(instances.shape), instances.numpy(), ids)
    yy, xx = np.mgrid[:40, :48]
    reference = np.zeros(instances.shape)
    for k, (cy, cx) in zip(ids, centres):
        where = instances.numpy() == k
        np.testing.assert_allclose(yy[where] + offsets[0].numpy()[where], cy, atol=1e-4)
        np.testing.assert_allclose(xx[where] + offsets[1].numpy()[where], cx, atol=1e-4)
        sigma = np.clip(0.125 * np.sqrt(where.sum()), 2.0, 8.0)
        reference = np.maximum(reference, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2)))
        py, px = round(cy), round(cx)  # the L's centre lies off the L: the peak is there all the same
        assert heatmap[py, px] == heatmap[py - 2:py + 3, px - 2:px + 3].max() > 0.9
    assert (offsets[:, instances == 0] == 0).all()
    near = reference > 0.02  # the target keeps each Gaussian to 3 sigma: compare where that is all of it
    np.testing.assert_allclose(heatmap.numpy()[near], reference[near], atol=1e-5)
    assert (heatmap.numpy()[~near] <= 0.02 + 1e-6).all()
    empty_heatmap, empty_offsets = centre_targets(torch.zeros(8, 8, dtype=torch.long))
    assert not empty_heatmap.any() and not empty_offsets.any()


def two_touching_discs(size=(40, 60), extra_disc=False):
    """Full-resolution raw maps (stride 1) of two discs that touch, with exact offsets and centre peaks."""
    h, w = size
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    discs = [(20.0, 20.0, 8.0), (20.0, 36.0, 8.0)]  # (cy, cx, r): 16 px apart, they share a boundary column
    if extra_disc:
        discs.append((8.0, 52.0, 4.0))
    label = torch.zeros(h, w, dtype=torch.long)
    for k, (cy, cx, r) in enumerate(discs):
        label[((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & (label == 0)] = k + 1
    semantic = torch.full((1, 3, h, w), -5.0)
    semantic[0, 0][label == 0] = 5.0
    semantic[0, 1][label > 0] = 5.0
    heatmap = torch.zeros(1, 1, h, w)
    offsets = torch.zeros(1, 2, h, w)
    for k, (cy, cx, _) in enumerate(discs[:2]):  # the extra disc gets no peak
        heatmap[0, 0] = torch.maximum(heatmap[0, 0], torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8))
    for k, (cy, cx, _) in enumerate(discs):
        where = label == k + 1
        offsets[0, 0][where] = cy - yy[where]
        offsets[0, 1][where] = cx - xx[where]
    return (semantic, heatmap, offsets), label


def segments_as_sets(out):
    ids = out["segment_ids"]
    return {s["id"]: (s["category_id"], ids == s["id"]) for s in out["segments"]}


def test_grouping_splits_two_touching_discs_exactly():
    raw, label = two_touching_discs()
    assert ndimage.label(label.numpy() > 0)[1] == 1  # one connected blob: the centres must split it
    out = panoptic_from_raw(*raw, IS_THING, (40, 60), stride=1, threshold=0.3, nms_kernel=7, min_area=1)[0]
    segments = segments_as_sets(out)
    things = [mask for category, mask in segments.values() if category == 1]
    stuff = [mask for category, mask in segments.values() if category == 0]
    assert len(things) == 2 and len(stuff) == 1
    for k in (1, 2):
        assert any(torch.equal(mask, label == k) for mask in things), f"disc {k} not found exactly"
    assert torch.equal(stuff[0], label == 0)
    scores = [s["score"] for s in out["segments"]]
    assert all(0.9 < s <= 1 for s in scores)  # peak 1 x probability ~1


def test_component_grouping_keeps_a_disc_without_a_peak():
    raw, label = two_touching_discs(extra_disc=True)
    grouped = segments_as_sets(panoptic_from_raw(*raw, IS_THING, (40, 60), stride=1, min_area=1)[0])
    things = [mask for category, mask in grouped.values() if category == 1]
    assert len(things) == 3 and any(torch.equal(mask, label == 3) for mask in things)
    plain = segments_as_sets(panoptic_from_raw(*raw, IS_THING, (40, 60), stride=1, min_area=1,
                                               component_grouping=False)[0])
    things = [mask for category, mask in plain.values() if category == 1]
    assert len(things) == 2  # Panoptic-DeepLab's grouping: the peak-less disc joins the nearest centre
    assert any((mask & (label == 3)).sum() == (label == 3).sum() for mask in things)


def test_small_instances_are_dropped_and_class_is_a_majority_vote():
    raw, label = two_touching_discs(extra_disc=True)
    semantic = raw[0].clone()
    first = label == 1
    left = first & (torch.arange(60)[None, :] < 15)  # a minority of disc 1 says class 2
    semantic[0, 1][left], semantic[0, 2][left] = -5.0, 5.0
    out = panoptic_from_raw(semantic, raw[1], raw[2], IS_THING, (40, 60), stride=1, min_area=60)[0]
    segments = segments_as_sets(out)
    assert not any((mask & (label == 3)).any() for _, mask in segments.values())  # 49 px < min_area: void
    assert (out["segment_ids"][label == 3] == 0).all()
    category, mask = next(v for v in segments.values() if (v[1] & first).any())
    assert category == 1 and torch.equal(mask, first)


def test_a_plateau_gives_one_centre_and_top_k_keeps_the_highest():
    heatmap = torch.zeros(20, 20)
    heatmap[5:7, 5:7] = 0.9  # a 2 x 2 plateau, as bilinear upsampling leaves at a peak
    heatmap[14, 14] = 0.5
    heatmap[3, 16] = 0.05  # below the threshold
    centres = find_centres(heatmap, threshold=0.1, nms_kernel=5, top_k=10)
    assert len(centres) == 2 and centres[1].tolist() == [14, 14]
    assert 5 <= centres[0, 0] <= 6 and 5 <= centres[0, 1] <= 6
    assert find_centres(heatmap, threshold=0.1, nms_kernel=5, top_k=1).tolist() == [centres[0].tolist()]


def recalibrate_batch_norm(model, x):
    """Running statistics = this batch's, so eval sees the network that was trained on it (tiny deep maps)."""
    def exact(module, inputs, output):
        t = inputs[0].float()
        module.running_mean.copy_(t.mean((0, 2, 3)))
        module.running_var.copy_(t.var((0, 2, 3), unbiased=False))

    hooks = [m.register_forward_hook(exact) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    model.train()
    with torch.no_grad():
        model.forward_raw(x)
    for hook in hooks:
        hook.remove()


def test_overfit_one_image_reaches_high_pq():
    image, target = disc_scene()
    model = make()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    history = []
    for _ in range(50):
        losses = model(image[None], [target])
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert np.mean(history[-5:]) < np.mean(history[:3]) / 3
    recalibrate_batch_norm(model, image[None])
    model.eval()
    with torch.no_grad():
        prediction = model(image[None])[0]
    evaluator = PanopticEvaluator(IS_THING)
    evaluator.process(canonical(target), {"segment_ids": prediction["segment_ids"].numpy(),
                                          "segments": prediction["segments"]})
    result = evaluator.evaluate()
    assert result["pq"] > 0.8, result["per_class"]


@pytest.mark.parametrize("encoder,extra", [("resnet18", {}), ("efficientnet_lite0", {"depthwise": True})])
def test_encoders_build_train_and_predict(encoder, extra):
    model = make(encoder, **extra)
    image, target = disc_scene((32, 48), discs=((10, 12, 5, 1), (30, 20, 6, 2)))
    losses = model(image[None].repeat(2, 1, 1, 1), [target, target])
    assert set(losses) == {"semantic", "heatmap", "offsets"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
    model.eval()
    with torch.no_grad():
        assert model(image[None])[0]["segment_ids"].shape == (32, 48)


def test_onnx_raw_outputs_match_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from seglab.export.raw_network import export_raw_onnx

    model = make().eval()
    path = tmp_path / "panoptic_deeplab.onnx"
    OUTPUTS = ["semantic", "heatmap", "offsets"]
    assert export_raw_onnx(model, path, (64, 64)) == OUTPUTS
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == OUTPUTS
    for size in [(64, 64), (70, 101)]:  # the second is padded inside the graph
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(size[1]))
        with torch.no_grad():
            expected = model.forward_raw(x)
        got = session.run(None, {"images": x.numpy()})
        for name, e, g in zip(OUTPUTS, expected, got):
            assert g.shape == tuple(e.shape), (name, size)
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-3, atol=1e-3, err_msg=f"{name} at {size}")
        assert model.postprocess([torch.from_numpy(g) for g in got], size)[0]["segment_ids"].shape == size


def test_checkpoint_round_trip_does_not_refetch(monkeypatch):
    args = json.loads(json.dumps({"num_classes": 3, "is_thing": IS_THING, "encoder": "efficientnet_lite0",
                                  "encoder_weights": "imagenet", **SMALL}))
    monkeypatch.setattr(seglab.encoders, "load_weights", lambda *a, **k: None)  # no weights offline
    torch.manual_seed(0)
    model = build_panoptic_model("panoptic_deeplab", args).eval()
    buffer = io.BytesIO()
    torch.save({"name": "panoptic_deeplab", "args": args, "model": model.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    def no_fetch(*a, **k):
        raise AssertionError("rebuilding a checkpoint fetched encoder weights")

    monkeypatch.setattr(seglab.encoders, "load_weights", no_fetch)
    torch.manual_seed(1)
    rebuilt = build_panoptic_model(saved["name"], saved["args"], pretrained=False)
    rebuilt.load_state_dict(saved["model"])
    rebuilt.eval()
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), model.state_dict().values()))
    x = torch.randn(1, 3, 64, 72)
    with torch.no_grad():
        for a, b in zip(model.forward_raw(x), rebuilt.forward_raw(x)):
            assert torch.equal(a, b)
