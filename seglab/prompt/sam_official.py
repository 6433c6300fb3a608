"""Official SAM (ViT-B / L / H, segment-anything) and MobileSAM (`vit_t`, TinyViT) as a PromptBackend.

The architecture comes from the official packages' modules (optional extras `seglab[sam]`,
`seglab[mobile_sam]`); the weights from an official `.pth` (a bare state dict), read with
`torch.load(weights_only=True)` on the CPU and moved to the device. The architecture is one of
`SAM_ARCHITECTURES` (named by `model_type`, or recognised from the weights' shapes), or a reduced
`config` of the same form (`{"encoder": "vit", "embed_dim": 64, "depth": 2, "num_heads": 2,
"global_attn_indexes": [1]}`) for tests and small experiments.

Pre- and post-processing follow SamPredictor: the longer side resized to 1024 (PIL bilinear),
normalised and padded bottom-right by the model's own `preprocess`; prompts scaled by the same
factors; masks upsampled by the model's own `postprocess_masks` to the original size.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from seglab.engine.device import pick_device
from seglab.prompt.backend import ImageEmbedding
from seglab.prompt.files import PromptCheckpointError, load_weights, read_checkpoint, require

IMAGE_SIZE = 1024  # SAM's square input
PATCH_SIZE = 16
PROMPT_DIM = 256
WINDOW_SIZE = 14
# the official architectures (segment_anything/build_sam.py, mobile_sam/build_sam.py), declared as data
SAM_ARCHITECTURES = {
    "vit_b": {"encoder": "vit", "embed_dim": 768, "depth": 12, "num_heads": 12, "global_attn_indexes": [2, 5, 8, 11]},
    "vit_l": {"encoder": "vit", "embed_dim": 1024, "depth": 24, "num_heads": 16,
              "global_attn_indexes": [5, 11, 17, 23]},
    "vit_h": {"encoder": "vit", "embed_dim": 1280, "depth": 32, "num_heads": 16,
              "global_attn_indexes": [7, 15, 23, 31]},
    "vit_t": {"encoder": "tiny_vit", "embed_dims": [64, 128, 160, 320], "depths": [2, 2, 6, 2],
              "num_heads": [2, 4, 5, 10], "window_sizes": [7, 7, 14, 7]},
}
ENCODER_PACKAGES = {"vit": "segment_anything", "tiny_vit": "mobile_sam"}  # which package builds which encoder
PIXEL_MEAN = [123.675, 116.28, 103.53]
PIXEL_STD = [58.395, 57.12, 57.375]


def looks_like(state: dict) -> bool:
    """A SAM / MobileSAM state dict: image_encoder + prompt_encoder + mask_decoder keys."""
    return all(any(str(k).startswith(p) for k in state) for p in ("image_encoder.", "prompt_encoder.", "mask_decoder."))


def build_sam(config: dict) -> torch.nn.Module:
    """The official Sam module (random weights) for an architecture of `SAM_ARCHITECTURES`' form."""
    encoder = config.get("encoder")
    if encoder not in ENCODER_PACKAGES:
        raise ValueError(f"SAM config: encoder must be one of {', '.join(ENCODER_PACKAGES)}, got {encoder!r}")
    package = ENCODER_PACKAGES[encoder]
    modeling = require(f"{package}.modeling", f"SAM's {encoder} encoder")
    if encoder == "vit":
        image_encoder = modeling.ImageEncoderViT(
            depth=config["depth"], embed_dim=config["embed_dim"], img_size=IMAGE_SIZE, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=config["num_heads"],
            patch_size=PATCH_SIZE, qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=list(config["global_attn_indexes"]),
            window_size=config.get("window_size", WINDOW_SIZE), out_chans=PROMPT_DIM)
    else:
        image_encoder = modeling.TinyViT(
            img_size=IMAGE_SIZE, in_chans=3, num_classes=1000, embed_dims=list(config["embed_dims"]),
            depths=list(config["depths"]), num_heads=list(config["num_heads"]),
            window_sizes=list(config["window_sizes"]), mlp_ratio=4.0, drop_rate=0.0, drop_path_rate=0.0,
            use_checkpoint=False, mbconv_expand_ratio=4.0, local_conv_size=3, layer_lr_decay=0.8)
    grid = IMAGE_SIZE // PATCH_SIZE
    sam = modeling.Sam(
        image_encoder=image_encoder,
        prompt_encoder=modeling.PromptEncoder(embed_dim=PROMPT_DIM, image_embedding_size=(grid, grid),
                                              input_image_size=(IMAGE_SIZE, IMAGE_SIZE), mask_in_chans=16),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=PROMPT_DIM, mlp_dim=2048, num_heads=8),
            transformer_dim=PROMPT_DIM, iou_head_depth=3, iou_head_hidden_dim=256),
        pixel_mean=PIXEL_MEAN, pixel_std=PIXEL_STD)
    return sam.eval()


def config_from_weights(state: dict) -> dict:
    """The ViT / TinyViT architecture a SAM state dict was saved from, read from its tensors' shapes."""
    if any(k.startswith("image_encoder.layers.") for k in state):
        return dict(SAM_ARCHITECTURES["vit_t"])  # TinyViT: only the official MobileSAM layout is recognised
    blocks = sorted({int(k.split(".")[2]) for k in state if k.startswith("image_encoder.blocks.")})
    if "image_encoder.patch_embed.proj.weight" not in state or not blocks:
        raise ValueError("no image_encoder.patch_embed / image_encoder.blocks weights")
    embed_dim = state["image_encoder.patch_embed.proj.weight"].shape[0]
    rel = {i: state[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape for i in blocks}  # [2 * size - 1, head_dim]
    global_size = 2 * (IMAGE_SIZE // PATCH_SIZE) - 1
    windowed = [s[0] for s in rel.values() if s[0] != global_size]
    return {"encoder": "vit", "embed_dim": embed_dim, "depth": len(blocks), "num_heads": embed_dim // rel[blocks[0]][1],
            "global_attn_indexes": [i for i, s in rel.items() if s[0] == global_size],
            "window_size": (windowed[0] + 1) // 2 if windowed else WINDOW_SIZE}


def architecture_name(config: dict) -> str:
    for name, known in SAM_ARCHITECTURES.items():
        if all(config.get(k) == v for k, v in known.items()):
            return name
    return "custom"


def load(path: str | Path, device: str = "auto", model_type: str | None = None, config: dict | None = None):
    """An official SAM / MobileSAM checkpoint -> SamBackend on `device` ("auto", "cpu", "cuda")."""
    path = Path(path)
    if model_type is not None and model_type not in SAM_ARCHITECTURES:
        raise ValueError(f"model_type={model_type!r}: expected one of {', '.join(SAM_ARCHITECTURES)}")
    state = read_checkpoint(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict) or not looks_like(state):
        raise PromptCheckpointError(f"{path}: not a SAM checkpoint (no image_encoder / prompt_encoder / "
                                    f"mask_decoder weights)")
    try:
        found = config_from_weights(state)
    except (ValueError, KeyError, IndexError) as e:
        raise PromptCheckpointError(f"{path}: cannot read SAM's architecture from the weights ({e})") from None
    if config is None and model_type is not None:
        config = SAM_ARCHITECTURES[model_type]
        if architecture_name(found) != model_type:
            raise PromptCheckpointError(f"{path}: holds SAM {architecture_name(found)} weights, not "
                                        f"model_type={model_type}")
    config = config or found
    name = f"sam_{architecture_name(config)}"
    model = build_sam(config)
    load_weights(model, state, path, name)
    target = pick_device(device)
    return SamBackend(model.to(target), name, target)


def longest_side_shape(height: int, width: int, side: int) -> tuple[int, int]:
    """(h, w) with the longer side resized to `side`, rounded as SAM's ResizeLongestSide rounds."""
    scale = side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


class SamBackend:
    """PromptBackend over an official `Sam` module (segment_anything or mobile_sam)."""

    def __init__(self, model: torch.nn.Module, name: str, device: torch.device):
        self.model, self.name, self.device = model, name, torch.device(device)
        self.image_size = IMAGE_SIZE

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        height, width = image.shape[:2]
        new_h, new_w = longest_side_shape(height, width, self.image_size)
        resized = np.array(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
        x = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        features = self.model.image_encoder(self.model.preprocess(x))
        return ImageEmbedding(features, (height, width), (new_h, new_w))

    def scale(self, xy: torch.Tensor, embedding: ImageEmbedding) -> torch.Tensor:
        """Original-image pixels -> model-input pixels (in float64 like SamPredictor, then float32)."""
        (height, width), (new_h, new_w) = embedding.original_size, embedding.input_size
        factor = torch.tensor([new_w / width, new_h / height], dtype=torch.float64, device=xy.device)
        return (xy.double() * factor).float()

    def prompt_embeddings(self, embedding, points, labels, boxes, mask_input):
        pts = None if points is None else (self.scale(points, embedding), labels.int())
        box = None if boxes is None else self.scale(boxes.reshape(-1, 2, 2), embedding).reshape(-1, 4)
        return self.model.prompt_encoder(points=pts, boxes=box, masks=mask_input)

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        sparse, dense = self.prompt_embeddings(embedding, points, labels, boxes, mask_input)
        low_res, scores = self.model.mask_decoder(
            image_embeddings=embedding.features, image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
        masks = self.model.postprocess_masks(low_res, embedding.input_size, embedding.original_size)
        return masks, scores, low_res
