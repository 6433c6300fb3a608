"""The one-stage instance model (yolo_seg): losses, output contract, assignment, cropping, NMS, overfit,
checkpoint rebuild and ONNX parity of the raw network. Small images (64-128 px), random init."""
import io
import json

import numpy as np
import pytest
import torch

import seglab.encoders
from seglab.models.instance import INSTANCE_MODELS, build_instance_model
from seglab.models.instance.onestage_head import pick_taps
from seglab.models.instance.onestage_loss import assign
from seglab.models.instance.onestage_post import assemble_masks, box_crop, detections, distances_to_boxes, locations

SMALL = {"neck_width": 16, "num_protos": 8}
ENCODERS = ["efficientnet_lite0", "resnet18", "vit_tiny_16", "timm:resnet18"]  # vit: no stride-8/32 feature


def make(encoder="efficientnet_lite0", seed=0, **extra):
    if encoder.startswith("timm:"):
        pytest.importorskip("timm")
    torch.manual_seed(seed)
    return build_instance_model("yolo_seg", {"num_classes": 2, "encoder": encoder, **SMALL, **extra})


def disc_scene(size=(64, 80), discs=((20, 22, 9, 1), (50, 40, 12, 2), (60, 15, 6, 1)), seed=0):
    """A normalised image with bright discs (cx, cy, r, label) on a dark background, and its target."""
    h, w = size
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    masks = torch.stack([((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) for cx, cy, r, _ in discs]).to(torch.uint8)
    image = torch.full((3, h, w), -1.0)
    for i, m in enumerate(masks):
        image[:, m.bool()] = (torch.tensor([1.0, 0.6, -0.4]) * (1 + 0.3 * i))[:, None]
    image += 0.1 * torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    where = [torch.nonzero(m, as_tuple=True) for m in masks]
    boxes = torch.tensor([[x.min(), y.min(), x.max() + 1, y.max() + 1] for y, x in where], dtype=torch.float32)
    labels = torch.tensor([d[3] for d in discs])
    return image, {"boxes": boxes, "labels": labels, "masks": masks}


def test_registered():
    assert INSTANCE_MODELS["yolo_seg"].__name__ == "OneStageSeg"


@pytest.mark.parametrize("encoder", ENCODERS)
def test_train_losses_finite_and_backward(encoder):
    model = make(encoder).train()
    image, target = disc_scene()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
             "masks": torch.zeros(0, *image.shape[-2:], dtype=torch.uint8)}
    losses = model(torch.stack([image, image.flip(-1)]), [target, empty])  # an image without objects too
    assert set(losses) == {"loss_cls", "loss_box", "loss_mask"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    assert losses["loss_box"] > 0 and losses["loss_mask"] > 0
    sum(losses.values()).backward()
    for part in (model.heads, model.prototypes, model.pyramid):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_a_batch_with_an_image_without_objects_trains_under_bfloat16_autocast():
    """A crop without nuclei (augment_preset=microscopy) crashed a DSB2018 run in epoch 4: its assignment's
    zero quality took the bfloat16 dtype of the centres and could not be put into the float32 target."""
    model = make("resnet18").train()
    image, target = disc_scene()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
             "masks": torch.zeros(0, *image.shape[-2:], dtype=torch.uint8)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(torch.stack([image, image]), [empty, target])
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_mask"] > 0


def test_training_needs_targets_with_valid_labels():
    model = make().train()
    image, target = disc_scene()
    with pytest.raises(ValueError, match="needs targets"):
        model(image[None])
    with pytest.raises(ValueError, match="labels must be 1..2"):
        model(image[None], [{**target, "labels": torch.tensor([0, 1, 1])}])


@pytest.mark.parametrize("encoder", ["efficientnet_lite0", "vit_tiny_16"])
def test_eval_output_contract(encoder):
    model = make(encoder, score_threshold=0.0, max_detections=7).eval()
    x = torch.randn(2, 3, 70, 93)  # not a multiple of any stride
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, list) and len(out) == 2
    for det in out:
        assert set(det) == {"boxes", "labels", "scores", "masks"}
        m = len(det["scores"])
        assert 0 < m <= 7
        assert det["boxes"].dtype == torch.float32 and det["boxes"].shape == (m, 4)
        assert det["labels"].dtype == torch.int64 and det["labels"].shape == (m,)
        assert ((det["labels"] >= 1) & (det["labels"] <= 2)).all()
        assert det["masks"].dtype == torch.float32 and det["masks"].shape == (m, 1, 70, 93)
        assert det["masks"].min() >= 0 and det["masks"].max() <= 1
        assert (det["scores"][:-1] >= det["scores"][1:]).all()
        assert (det["boxes"][:, 0::2] >= 0).all() and (det["boxes"][:, 0::2] <= 93).all()
        assert (det["boxes"][:, 1::2] >= 0).all() and (det["boxes"][:, 1::2] <= 70).all()
    model.inference["score_threshold"] = 1.1
    with torch.no_grad():
        none = model(x[:1])[0]
    assert none["boxes"].shape == (0, 4) and none["masks"].shape == (0, 1, 70, 93)


def test_pick_taps_uses_declared_reductions():
    assert pick_taps([2, 4, 8, 16, 32], [8, 16, 32]) == [2, 3, 4]
    assert pick_taps([2, 4, 8, 16, 32], [4, 8, 16, 32]) == [1, 2, 3, 4]
    assert pick_taps([16, 16, 16, 16], [8, 16, 32]) == [3, 3, 3]  # nearest, deepest on a tie


def grid_case():
    """An 8 x 8 grid of stride-8 locations; each predicts a 16 x 16 box centred on itself; scores 0.5."""
    points, strides = locations([(8, 8)], [8], torch.zeros(1))
    pred = torch.cat([points - 8, points + 8], 1)
    return points, strides, torch.full((64, 2), 0.5), pred


def test_centres_and_boxes_stay_float32_under_a_bfloat16_head():
    like = torch.zeros(1, dtype=torch.bfloat16)  # what a head's output is under CPU bf16 autocast
    points, strides = locations([(1, 130)], [4], like)
    assert points.dtype == strides.dtype == torch.float32
    assert points[64].tolist() == [258.0, 2.0]  # bfloat16 holds 256 or 260, never 258
    distances = torch.tensor([[3.0, 3.0, 5.0, 5.0]], dtype=torch.bfloat16).expand(130, 4)
    boxes = distances_to_boxes(points, distances)
    assert boxes.dtype == torch.float32 and boxes[64].tolist() == [255.0, -1.0, 263.0, 7.0]


def index_of(points, x, y):
    return int(torch.nonzero((points[:, 0] == x) & (points[:, 1] == y))[0])


def test_assigner_hand_made_case():
    points, strides, scores, pred = grid_case()
    gt = torch.tensor([[0.0, 0.0, 24.0, 24.0],  # covers the locations at x, y in {4, 12, 20}
                       [29.0, 29.0, 34.0, 34.0]])  # smaller than a cell, between four locations
    a = assign(points, strides, scores, pred, gt, torch.tensor([0, 1]), top_k=5, centre_radius=1.0)
    big = {index_of(points, x, y) for x, y in [(12, 12), (12, 4), (4, 12), (20, 12), (12, 20)]}  # best IoU
    tiny = {index_of(points, x, y) for x, y in [(28, 28), (36, 28), (28, 36), (36, 36)]}  # the centre prior
    assert set(torch.nonzero(a.gt_index == 0).squeeze(1).tolist()) == big
    assert set(torch.nonzero(a.gt_index == 1).squeeze(1).tolist()) == tiny
    assert (a.quality[a.gt_index < 0] == 0).all()
    centre = index_of(points, 12, 12)
    assert a.quality[centre] == pytest.approx(256 / 576, rel=1e-4)  # its object's best: quality = its IoU
    assert (a.quality[list(big - {centre})] < a.quality[centre]).all()
    empty = assign(points, strides, scores, pred, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert (empty.gt_index == -1).all()


def test_assigner_gives_a_shared_location_to_the_better_overlap():
    points, strides, scores, pred = grid_case()
    shared = index_of(points, 28, 28)
    pred[shared] = torch.tensor([24.0, 24.0, 40.0, 40.0])
    gt = torch.tensor([[10.0, 10.0, 40.0, 40.0], [22.0, 22.0, 40.0, 40.0]])  # both contain (28, 28)
    a = assign(points, strides, scores, pred, gt, torch.tensor([0, 0]), top_k=64, centre_radius=0.0)
    assert a.gt_index[shared] == 1
    outside = index_of(points, 60, 60)
    assert a.gt_index[outside] == -1


def test_box_crop_and_mask_assembly():
    box = torch.tensor([[2.0, 3.0, 5.0, 7.0]])
    crop = box_crop(box, 8, 8)[0]
    expected = torch.zeros(8, 8)
    expected[3:7, 2:5] = 1
    assert torch.equal(crop, expected)  # pixel-edge box: exactly its pixels
    assert torch.equal(box_crop(box, 2, 2, stride=4)[0], torch.ones(2, 2))  # touches all four 4 x 4 cells
    tiny = box_crop(torch.tensor([[1.0, 1.0, 2.0, 2.0]]), 2, 2, stride=4)[0]
    assert torch.equal(tiny, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))  # smaller than a cell: keeps its cell
    protos = torch.full((1, 4, 4), 10.0)  # sigmoid ~ 1 everywhere
    masks = assemble_masks(torch.ones(2, 1), protos, torch.tensor([[2.0, 3.0, 5.0, 7.0], [0.0, 0.0, 3.0, 1.0]]),
                           padded=(16, 16), size=(12, 10))
    assert masks.shape == (2, 1, 12, 10)
    assert torch.equal(masks[0, 0] > 0.99, box_crop(box, 12, 10)[0] > 0)
    assert masks[1, 0, 1:].max() == 0 and masks[1, 0, 0, 3:].max() == 0


def test_nms_removes_duplicates_class_wise():
    boxes = torch.tensor([[[10.0, 10.0, 30.0, 30.0], [11.0, 10.0, 31.0, 30.0], [50.0, 50.0, 60.0, 60.0],
                           [10.0, 10.0, 30.0, 30.0], [0.0, 0.0, 5.0, 5.0]]])
    probs = torch.tensor([[[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.0, 0.6], [0.01, 0.0]]])
    logits = torch.logit(probs.clamp(1e-6, 1 - 1e-6))
    coefficients, protos = torch.ones(1, 5, 1), torch.ones(1, 1, 16, 16)
    out = detections(logits, boxes, coefficients, protos, 4, (64, 64), score_threshold=0.05, pre_nms_top_k=100,
                     nms_iou=0.5, max_detections=10)[0]
    assert out["scores"].tolist() == pytest.approx([0.9, 0.7, 0.6])  # 0.8 duplicates 0.9; 0.01 below threshold
    assert out["labels"].tolist() == [1, 1, 2]  # same box, other class: kept
    capped = detections(logits, boxes, coefficients, protos, 4, (64, 64), 0.05, 100, 0.5, max_detections=2)[0]
    assert capped["scores"].tolist() == pytest.approx([0.9, 0.7])


def mask_iou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    pred, truth = pred.bool(), truth.bool()
    return float((pred & truth).sum() / (pred | truth).sum().clamp(min=1))


def recalibrate_batch_norm(model, image):
    """Running statistics := the (biased) batch statistics training normalised this one image with, so
    eval sees the trained network (the unbiased running variance of a 2 x 2 map would not)."""
    def exact(module, inputs, output):
        x = inputs[0].float()
        module.running_mean.copy_(x.mean((0, 2, 3)))
        module.running_var.copy_(x.var((0, 2, 3), unbiased=False))

    hooks = [m.register_forward_hook(exact) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    model.train()
    with torch.no_grad():
        model.dense(image[None])
    for hook in hooks:
        hook.remove()


def overfit(steps: int, size, encoder="resnet18", lr=3e-3, **extra):
    image, target = disc_scene(size)
    model = make(encoder, **extra)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, foreach=True)
    model.train()
    history = []
    for _ in range(steps):
        losses = model(image[None], [target])
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    recalibrate_batch_norm(model, image)
    model.eval()
    with torch.no_grad():
        det = model(image[None])[0]
    return history, det, target


def check_found(det, target, min_iou):
    confident = det["scores"] > 0.3
    for truth, label in zip(target["masks"], target["labels"]):
        ious = [mask_iou(m[0] > 0.5, truth) for m, ok, lab in zip(det["masks"], confident, det["labels"])
                if ok and lab == label]
        assert ious and max(ious) > min_iou, (label, ious)


def test_overfit_short():
    history, det, target = overfit(60, (64, 64))
    assert np.mean(history[-5:]) < np.mean(history[:3]) / 5
    check_found(det, target, 0.5)


@pytest.mark.slow
def test_overfit_long():
    history, det, target = overfit(300, (96, 128), "efficientnet_lite0", neck_width=32, num_protos=16)
    # the point mask loss keeps what bilinear logits cannot make sharp at the edges (about 0.1 here)
    assert np.mean(history[-5:]) < np.mean(history[:3]) / 10
    check_found(det, target, 0.9)  # points: 0.95-0.98 per disc (dense: 0.88-0.96)


def test_checkpoint_round_trip_does_not_refetch(monkeypatch):
    args = json.loads(json.dumps({"num_classes": 2, "encoder": "efficientnet_lite0", "encoder_weights": "imagenet",
                                  "strides": [4, 8, 16, 32], "proto_stride": 4, **SMALL}))
    torch.manual_seed(0)
    model = build_instance_model("yolo_seg", args).eval()
    buffer = io.BytesIO()
    torch.save({"name": "yolo_seg", "args": args, "model": model.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    def no_fetch(*a, **k):
        raise AssertionError("rebuilding a checkpoint fetched encoder weights")

    monkeypatch.setattr(seglab.encoders, "load_weights", no_fetch)
    torch.manual_seed(1)
    rebuilt = build_instance_model(saved["name"], saved["args"], pretrained=False)
    rebuilt.load_state_dict(saved["model"])
    rebuilt.eval()
    x = torch.randn(1, 3, 64, 72)
    with torch.no_grad():
        for a, b in zip(model.forward_raw(x), rebuilt.forward_raw(x)):
            assert torch.equal(a, b)


def test_channels_last_gives_the_same_outputs():
    model = make().eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        plain = model.forward_raw(x)
        fast = model.to(memory_format=torch.channels_last).forward_raw(x.contiguous(memory_format=torch.channels_last))
    for a, b in zip(plain, fast):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("encoder", ["efficientnet_lite0", "resnet18"])
def test_onnx_raw_outputs_match_onnxruntime(encoder, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from seglab.export.raw_network import export_raw_onnx

    model = make(encoder, strides=[4, 8, 16, 32], score_threshold=0.0, max_detections=20).eval()
    path = tmp_path / "yolo_seg.onnx"
    OUTPUTS = ["logits", "boxes", "coefficients", "protos"]  # the names exported files have always had
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
        decoded = model.postprocess([torch.from_numpy(g) for g in got], size)[0]  # post-processing runs after it
        assert len(decoded["scores"]) == 20 and decoded["masks"].shape == (20, 1, *size)


def test_mask_assembly_per_box_equals_upsampling_the_whole_map():
    torch.manual_seed(0)
    protos, coefficients = torch.randn(6, 10, 12), torch.randn(5, 6)
    boxes = torch.tensor([[0.0, 0.0, 48.0, 40.0], [3.2, 5.7, 17.9, 21.1], [30.5, 20.0, 47.0, 39.5],
                          [44.0, 1.0, 45.5, 2.0], [10.0, 10.0, 10.0, 30.0]])  # the last: no pixel
    size = (37, 45)  # the padded input is 40 x 48 (stride 4)
    got = assemble_masks(coefficients, protos, boxes, (40, 48), size)
    logits = (coefficients @ protos.reshape(6, -1)).reshape(5, 1, 10, 12)
    whole = torch.sigmoid(torch.nn.functional.interpolate(logits, size=(40, 48), mode="bilinear",
                                                          align_corners=False))
    expected = whole[:, :, :37, :45] * box_crop(boxes, 37, 45)[:, None]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_point_mask_loss_reads_the_logits_inference_thresholds_and_the_pixels_under_the_points():
    from seglab.models.instance.onestage_loss import MASK_GRID, box_grid, point_mask_loss

    torch.manual_seed(1)
    protos, coefficients = torch.randn(6, 10, 12), torch.randn(3, 6)
    masks = (torch.rand(2, 37, 45) > 0.5).to(torch.uint8)
    boxes = torch.tensor([[3.0, 5.0, 11.0, 29.0], [19.0, 6.0, 43.0, 30.0]])  # sides odd x 8: points on pixel centres
    owner = torch.tensor([1, 0, 1])
    got = point_mask_loss(coefficients, protos, masks, boxes, owner, proto_stride=4, points=8)
    # by hand: the whole logit map upsampled to input pixels as inference does (assemble_masks), read at the
    # grid points (placed on pixel centres, where that map is defined), against the mask pixel under each point
    logits = (coefficients @ protos.reshape(6, -1)).reshape(3, 1, 10, 12)
    fine = torch.nn.functional.interpolate(logits, scale_factor=4.0, mode="bilinear", align_corners=False)[:, 0]
    expected = 0.0
    for p, g in enumerate(owner.tolist()):
        xs, ys = box_grid(boxes[g:g + 1], 8)
        fx, fy = xs[0] - 0.5, ys[0] - 0.5  # pixel j's centre is at j + 0.5
        assert torch.allclose(fx, fx.round()) and torch.allclose(fy, fy.round())
        at = fine[p][fy.round().long()[:, None], fx.round().long()[None, :]]
        truth = masks[g][ys[0].floor().long()[:, None], xs[0].floor().long()[None, :]].float()
        expected += torch.nn.functional.binary_cross_entropy_with_logits(at, truth)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert MASK_GRID >= 16  # a nucleus box of ~30 px gets about a point per pixel


@pytest.mark.parametrize("mask_loss", ["points", "dense"])
def test_both_mask_losses_train_the_mask(mask_loss):
    model = make(mask_loss=mask_loss).train()
    image, target = disc_scene()
    assert model.loss_options["mask_loss"] == mask_loss
    losses = model(image[None], [target])
    losses["loss_mask"].backward()
    assert torch.isfinite(losses["loss_mask"]) and losses["loss_mask"] > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prototypes.parameters())
    with pytest.raises(ValueError, match="mask_loss"):
        make(mask_loss="pixels")
