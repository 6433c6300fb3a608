"""Mask R-CNN on seglab encoders (seglab/models/instance/maskrcnn.py): losses, output contract, overfit,
checkpoint rebuild, settings that must reach torchvision's parts, and the pyramid's choice of features."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seglab.data.instance import InstanceDataset, collate, open_instance_split
from seglab.encoders import build_encoder
from seglab.models.instance import INSTANCE_MODELS, build_instance_model
from seglab.models.instance.fpn_backbone import EncoderFPN, pyramid_taps
from seglab.models.instance.maskrcnn import NUCLEI, SMALL_OBJECT_ANCHORS, MaskRCNN

LOSSES = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
SMALL = {"fpn_channels": 32, "box_head_channels": 128, "mask_head_channels": 32}  # fast heads for tests
ENCODERS = ["resnet18", "efficientnet_lite0", "mit_b0",
            pytest.param("timm:resnet18", marks=pytest.mark.skipif(importlib.util.find_spec("timm") is None,
                                                                   reason="timm is not installed"))]
DSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018" / "stage1_train"


def scene(height: int = 96, width: int = 96, seed: int = 0):
    """A normalised image with two discs and a square, and its torchvision-format target (labels 1-based)."""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    shapes = [((yy - 28) ** 2 + (xx - 30) ** 2 <= 12 ** 2),
              ((yy - 64).abs() <= 14) & ((xx - 62).abs() <= 14),
              ((yy - 24) ** 2 + (xx - 70) ** 2 <= 9 ** 2)]
    masks = torch.stack(shapes).to(torch.uint8)
    generator = torch.Generator().manual_seed(seed)
    image = torch.full((3, height, width), -1.0) + 0.1 * torch.randn(3, height, width, generator=generator)
    image[:, masks.bool().any(0)] += 2.0
    return image, {"boxes": boxes_of(masks), "labels": torch.tensor([1, 2, 1]), "masks": masks}


def boxes_of(masks: torch.Tensor) -> torch.Tensor:
    boxes = []
    for mask in masks.bool():
        ys, xs = torch.where(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return torch.tensor(boxes, dtype=torch.float32)


def mask_iou(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """[M, H, W] bool vs [H, W] bool -> [M] IoU."""
    inter = (predicted & truth).flatten(1).sum(1).float()
    union = (predicted | truth).flatten(1).sum(1).float()
    return inter / union.clamp(min=1)


def test_registered():
    assert INSTANCE_MODELS["maskrcnn"] is MaskRCNN


@pytest.mark.parametrize("encoder", ENCODERS)
def test_train_mode_gives_the_five_finite_losses_and_gradients_reach_the_encoder(encoder):
    torch.manual_seed(0)
    model = MaskRCNN(num_classes=2, encoder=encoder, **SMALL).train()
    image, target = scene(80, 72)
    losses = model(torch.stack([image, image.flip(-1)]),
                   [target, {**target, "masks": target["masks"].flip(-1), "boxes": boxes_of(target["masks"].flip(-1))}])
    assert set(losses) == LOSSES
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    encoder_grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert encoder_grads and any(g.abs().sum() > 0 for g in encoder_grads)
    assert model.normalization == build_encoder(encoder).normalization


def test_an_image_without_objects_trains_on_background_only():
    model = MaskRCNN(num_classes=1, encoder="resnet18", **SMALL).train()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros(0, 64, 64, dtype=torch.uint8)}
    losses = model(torch.randn(1, 3, 64, 64), [empty])
    assert losses["loss_classifier"] > 0 and losses["loss_objectness"] > 0  # "background" is still learnt
    assert losses["loss_mask"] == 0 and losses["loss_box_reg"] == 0
    sum(losses.values()).backward()


def test_eval_output_follows_the_contract_for_any_input_size():
    torch.manual_seed(0)
    model = MaskRCNN(num_classes=3, encoder="resnet18", score_threshold=0.0, max_detections=7, **SMALL).eval()
    images = torch.randn(2, 3, 70, 90)  # not a multiple of 32: padded inside
    with torch.no_grad():
        outputs = model(images)
        as_list = model(list(images))
    assert len(outputs) == 2
    for out, same in zip(outputs, as_list):
        assert set(out) == {"boxes", "labels", "scores", "masks"}
        m = len(out["scores"])
        assert 0 < m <= 7
        assert out["boxes"].shape == (m, 4) and out["boxes"].dtype == torch.float32
        assert out["labels"].dtype == torch.int64 and out["labels"].min() >= 1 and out["labels"].max() <= 3
        assert out["masks"].shape == (m, 1, 70, 90) and out["masks"].dtype == torch.float32
        assert out["masks"].min() >= 0 and out["masks"].max() <= 1
        assert torch.all(out["scores"][:-1] >= out["scores"][1:])
        assert out["boxes"][:, [0, 2]].max() <= 90 and out["boxes"][:, [1, 3]].max() <= 70 and out["boxes"].min() >= 0
        assert torch.allclose(out["boxes"], same["boxes"]) and torch.allclose(out["scores"], same["scores"])


@pytest.fixture
def one_thread():
    """Small ops dominate here: one thread is faster than two on a busy 2-core machine (no spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_overfits_one_image_and_then_finds_its_objects(one_thread):
    torch.manual_seed(0)
    model = MaskRCNN(num_classes=2, encoder="resnet18", fpn_channels=64, mask_head_channels=64,
                     anchor_sizes=SMALL_OBJECT_ANCHORS, rpn_post_nms_top_n_train=200,
                     rpn_batch_size_per_image=64, box_batch_size_per_image=64).train()
    image, target = scene()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(40):
        loss = sum(model(image[None], [target]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert np.mean(history[-5:]) < history[0] / 5, history
    model.eval()
    with torch.no_grad():
        out = model(image[None])[0]
    confident = out["scores"] > 0.5
    predicted = out["masks"][confident, 0] > 0.5
    for mask, label in zip(target["masks"].bool(), target["labels"]):
        iou = mask_iou(predicted, mask)
        assert iou.numel() and iou.max() > 0.5, f"object {label}: best mask IoU {iou.max() if iou.numel() else None}"
        assert out["labels"][confident][iou.argmax()] == label


def test_checkpoint_arguments_rebuild_the_same_model(tmp_path, monkeypatch):
    torch.manual_seed(0)
    args = {"num_classes": 2, "encoder": "resnet18", "encoder_weights": "imagenet",
            "anchor_sizes": [[8], [16], [32], [64], [128]], "aspect_ratios": [1.0, 2.0],
            "score_threshold": 0.0, "max_detections": 20, **SMALL}
    fetched = []
    monkeypatch.setattr("seglab.encoders.load_weights", lambda encoder, spec, weights, name: fetched.append(weights))
    model = build_instance_model("maskrcnn", args).eval()
    assert fetched == ["imagenet"]
    torch.save({"args": args, "state": model.state_dict()}, tmp_path / "m.pt")

    saved = torch.load(tmp_path / "m.pt", weights_only=True)
    rebuilt = build_instance_model("maskrcnn", json.loads(json.dumps(saved["args"])), pretrained=False)
    assert fetched == ["imagenet"]  # the rebuild did not fetch again: the state dict brings the weights
    rebuilt.load_state_dict(saved["state"])
    rebuilt.eval()
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        a, b = model(images)[0], rebuilt(images)[0]
    assert len(a["scores"]) > 0
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_small_object_settings_reach_torchvision():
    model = MaskRCNN(num_classes=1, encoder="resnet18", aspect_ratios=[1.0], **{**NUCLEI, **SMALL})
    generator = model.rpn.anchor_generator
    assert generator.sizes == tuple(tuple(s) for s in SMALL_OBJECT_ANCHORS)
    finest = generator.cell_anchors[0]  # one square anchor of 8 px centred on each x/4 cell
    assert finest.shape == (1, 4) and torch.allclose(finest[0, 2:] - finest[0, :2], torch.tensor([8.0, 8.0]))
    assert model.rpn.head.cls_logits.out_channels == 1  # one aspect ratio -> one anchor per location
    assert model.roi_heads.detections_per_img == NUCLEI["max_detections"]
    assert model.rpn.post_nms_top_n() == NUCLEI["rpn_post_nms_top_n_train"]
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == NUCLEI["box_batch_size_per_image"]
    assert model.rpn.fg_bg_sampler.batch_size_per_image == NUCLEI["rpn_batch_size_per_image"]


def test_anchor_sizes_must_name_one_entry_per_level():
    with pytest.raises(ValueError, match="anchor_sizes.*4 levels given.*5"):
        MaskRCNN(num_classes=1, encoder="resnet18", anchor_sizes=[[8], [16], [32], [64]])
    with pytest.raises(ValueError, match="num_classes"):
        MaskRCNN(num_classes=0, encoder="resnet18")
    with pytest.raises(ValueError, match="min_size=0"):
        MaskRCNN(num_classes=1, encoder="resnet18", min_size=0)
    with pytest.raises(ValueError, match=r"encoder vit_tiny_16 declares features at reductions \[16, 16, 16, 16\]"):
        MaskRCNN(num_classes=1, encoder="vit_tiny_16")


def test_default_keeps_the_input_size_and_min_size_resizes_inside():
    image = torch.randn(3, 50, 70)
    keep = MaskRCNN(num_classes=1, encoder="resnet18", **SMALL).eval()
    batch, _ = keep.transform([image])
    assert batch.image_sizes == [(50, 70)] and batch.tensors.shape[-2:] == (64, 96)  # padded to the multiple 32
    assert torch.equal(batch.tensors[0, :, :50, :70], image)  # already normalised: left as it is

    resized = MaskRCNN(num_classes=1, encoder="resnet18", min_size=100, max_size=1000, score_threshold=0.0,
                       **SMALL).eval()
    batch, _ = resized.transform([image])
    assert batch.image_sizes == [(100, 140)]
    with torch.no_grad():
        out = resized([image])[0]
    assert out["masks"].shape[-2:] == (50, 70) and out["boxes"][:, 2].max() <= 70


def test_pyramid_picks_features_by_declared_reduction():
    assert pyramid_taps([2, 4, 8, 16, 32], (4, 8, 16, 32)) == [1, 2, 3, 4]
    assert pyramid_taps([4, 4, 8, 8, 16, 32], (4, 8, 16, 32)) == [1, 3, 4, 5]  # the deepest of equal reductions
    with pytest.raises(ValueError, match=r"reductions \[16, 16, 16, 16\].*missing \[4, 8, 32\]"):
        pyramid_taps([16, 16, 16, 16], (4, 8, 16, 32))
    backbone = EncoderFPN(build_encoder("mit_b0"), out_channels=16)  # mit declares [4, 8, 16, 32]: no x/2 feature
    levels = backbone(torch.randn(1, 3, 64, 128))
    assert list(levels) == ["0", "1", "2", "3", "pool"]
    assert [tuple(v.shape[-2:]) for v in levels.values()] == [(16, 32), (8, 16), (4, 8), (2, 4), (1, 2)]
    assert all(v.shape[1] == backbone.out_channels == 16 for v in levels.values())


@pytest.mark.parametrize("encoder", ["resnet18", "efficientnet_lite0"])
def test_frozen_encoder_norm_keeps_its_statistics_and_affine_in_training(encoder):
    torch.manual_seed(0)
    model = MaskRCNN(num_classes=2, encoder=encoder, freeze_encoder_norm=True, **SMALL).train()
    norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    image, target = scene(64, 96)
    sum(model(image[None], [target]).values()).backward()
    assert all(m.weight.grad is None and m.bias.grad is None for m in norms)
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items() if "running" in k)
    assert set(before) == set(MaskRCNN(num_classes=2, encoder=encoder, **SMALL).encoder.state_dict())
    unfrozen = MaskRCNN(num_classes=2, encoder=encoder, **SMALL).train()
    assert all(m.training for m in unfrozen.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.skipif(not DSB.is_dir(), reason="DSB 2018 data is not in ../shared/data/dsb2018")
def test_nuclei_settings_train_on_a_real_dsb_image_from_the_instance_dataset():
    torch.manual_seed(0)
    dataset = InstanceDataset(open_instance_split(DSB.parent, "train", seed=0), size=128)
    images, targets, _ = collate([dataset[0], dataset[1]])
    assert len(targets[0]["labels"]) >= 20  # many small objects
    model = MaskRCNN(num_classes=1, encoder="resnet18", **{**NUCLEI, **SMALL}).train()
    mean, std = (torch.tensor(model.normalization[k]).view(3, 1, 1) for k in ("mean", "std"))
    batch = [(image.float() / 255 - mean) / std for image in images]  # what seglab's engine feeds
    losses = model(batch, targets)
    assert set(losses) == LOSSES and all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        outputs = model(batch)
    assert [o["masks"].shape[-2:] for o in outputs] == [image.shape[-2:] for image in images]


def test_under_bf16_autocast_the_box_arithmetic_stays_float32():
    """Anchors, proposals and the heads' box outputs in float32 (bf16 coordinates of a 512-px image sit on a
    2-4 px grid: the DSB2018 recipe's loss became NaN); the convolutions still run in bf16."""
    torch.manual_seed(0)
    model = MaskRCNN(num_classes=2, encoder="resnet18", anchor_sizes=SMALL_OBJECT_ANCHORS, **SMALL).train()
    seen = {}
    model.roi_heads.register_forward_pre_hook(lambda m, args: seen.update(proposals=args[1][0].dtype))
    model.rpn.head.conv.register_forward_hook(lambda m, i, out: seen.update(rpn_conv=out[0].dtype))
    model.rpn.anchor_generator.register_forward_hook(lambda m, i, out: seen.update(anchors=out[0].dtype))
    image, target = scene(96, 96)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(image[None], [target])
    assert seen == {"proposals": torch.float32, "anchors": torch.float32, "rpn_conv": torch.bfloat16}
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(image[None])[0]
    assert out["boxes"].dtype == out["masks"].dtype == out["scores"].dtype == torch.float32


def test_mask_head_channels_set_the_mask_head_and_predictor_widths():
    model = MaskRCNN(num_classes=1, encoder="resnet18", mask_head_channels=64)
    convs = [m for m in model.roi_heads.mask_head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.out_channels == 64 for c in convs)
    assert model.roi_heads.mask_predictor.conv5_mask.in_channels == 64


def test_a_key_left_at_null_builds_the_constructor_default():  # configs/dsb2018_maskrcnn.yaml leaves it null
    from seglab.config import make_config
    from seglab.models import model_arguments

    cfg = make_config(model="maskrcnn", encoder="resnet18")
    args = model_arguments("maskrcnn", 1, cfg.to_dict())
    assert "mask_head_channels" not in args and "anchor_sizes" not in args
    model = MaskRCNN(**args)
    assert model.roi_heads.mask_predictor.conv5_mask.in_channels == 256


def test_fpn_channels_set_the_pyramid_rpn_and_box_head_input_widths():
    model = MaskRCNN(num_classes=1, encoder="resnet18", fpn_channels=64)
    assert model.backbone.out_channels == 64
    assert model.rpn.head.conv[0][0].in_channels == 64
    assert model.roi_heads.box_head.fc6.in_features == 64 * 7 * 7
    convs = [m for m in model.roi_heads.mask_head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].in_channels == 64
