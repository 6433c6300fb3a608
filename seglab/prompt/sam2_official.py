"""Official SAM 2 / SAM 2.1 image models (the `sam2` package, extra `seglab[sam2]`) as a PromptBackend.

The architecture is built from the package's own config (`configs/sam2.1/sam2.1_hiera_t.yaml`, ...)
by its `build_sam2`, with no weights; the weights come from the official checkpoint
(`{"model": state_dict}`), read with `torch.load(weights_only=True)` on the CPU. `model_type` names
the config; when not given it is recognised from the weights (trunk width and depth, 2.1 or 2.0).

Pre- and post-processing follow SAM2ImagePredictor: the image resized (not padded) to 1024 x 1024,
normalised with ImageNet's mean / std; prompts scaled to that square; a box enters as two corner
points (labels 2, 3) in front of the clicks; masks upsampled bilinearly to the original size; the
returned low-resolution logits clamped to [-32, 32].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from seglab.engine.device import pick_device
from seglab.prompt.backend import ImageEmbedding
from seglab.prompt.files import PromptCheckpointError, load_weights, read_checkpoint, require

# name -> (config inside the sam2 package, trunk embed_dim, trunk blocks), as the package's configs declare them
SAM2_CONFIGS = {
    "sam2.1_hiera_t": ("configs/sam2.1/sam2.1_hiera_t.yaml", 96, 12),
    "sam2.1_hiera_s": ("configs/sam2.1/sam2.1_hiera_s.yaml", 96, 16),
    "sam2.1_hiera_b+": ("configs/sam2.1/sam2.1_hiera_b+.yaml", 112, 24),
    "sam2.1_hiera_l": ("configs/sam2.1/sam2.1_hiera_l.yaml", 144, 48),
    "sam2_hiera_t": ("configs/sam2/sam2_hiera_t.yaml", 96, 12),
    "sam2_hiera_s": ("configs/sam2/sam2_hiera_s.yaml", 96, 16),
    "sam2_hiera_b+": ("configs/sam2/sam2_hiera_b+.yaml", 112, 24),
    "sam2_hiera_l": ("configs/sam2/sam2_hiera_l.yaml", 144, 48),
}
SAM21_ONLY_KEY = "no_obj_embed_spatial"  # a parameter SAM 2.1 added
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
LOW_RES_CLAMP = 32.0
BOX_LABELS = (2, 3)  # SAM 2's labels for a box's top-left and bottom-right corners


def looks_like(state: dict) -> bool:
    return any(str(k).startswith("image_encoder.trunk.") for k in state) and \
        any(str(k).startswith("sam_mask_decoder.") for k in state)


def config_from_weights(state: dict) -> str:
    width = state["image_encoder.trunk.patch_embed.proj.weight"].shape[0]
    blocks = len({k.split(".")[3] for k in state if k.startswith("image_encoder.trunk.blocks.")})
    version = "sam2.1" if SAM21_ONLY_KEY in state else "sam2"
    for name, (_, embed_dim, depth) in SAM2_CONFIGS.items():
        if name.startswith(version + "_") and (embed_dim, depth) == (width, blocks):
            return name
    raise ValueError(f"a {version} trunk of width {width} and {blocks} blocks matches none of "
                     f"{', '.join(SAM2_CONFIGS)}")


def build(model_type: str, overrides: tuple[str, ...] = ()) -> torch.nn.Module:
    """The official SAM 2 image model of `model_type`, random weights, on the CPU (sam2's build_sam2).

    `overrides`: hydra overrides of the config (e.g. a shallower trunk for tests:
    `("++model.image_encoder.trunk.stages=[1,1,2,1]", "++model.image_encoder.trunk.global_att_blocks=[3]")`)."""
    if model_type not in SAM2_CONFIGS:
        raise ValueError(f"model_type={model_type!r}: expected one of {', '.join(SAM2_CONFIGS)}")
    build_sam = require("sam2.build_sam", "SAM 2")
    return build_sam.build_sam2(SAM2_CONFIGS[model_type][0], ckpt_path=None, device="cpu", mode="eval",
                                hydra_overrides_extra=list(overrides))


def load(path: str | Path, device: str = "auto", model_type: str | None = None, overrides: tuple[str, ...] = ()):
    """An official SAM 2 / 2.1 checkpoint -> Sam2Backend on `device` ("auto", "cpu", "cuda").

    `model_type` is read from the weights when not given; a checkpoint of a config changed by hydra
    `overrides` (see `build`) needs both."""
    path = Path(path)
    obj = read_checkpoint(path)
    state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not looks_like(state):
        raise PromptCheckpointError(f"{path}: not a SAM 2 checkpoint (no image_encoder.trunk / sam_mask_decoder "
                                    f"weights)")
    if overrides and model_type is None:
        raise ValueError(f"{path}: overrides= change the architecture; give model_type= (the config they change)")
    if not overrides:
        try:
            found = config_from_weights(state)
        except (ValueError, KeyError) as e:
            raise PromptCheckpointError(f"{path}: cannot tell the SAM 2 config from the weights ({e})") from None
        if model_type is not None and model_type != found:
            raise PromptCheckpointError(f"{path}: holds {found} weights, not model_type={model_type}")
        model_type = found
    found = model_type
    model = build(found, tuple(overrides))
    load_weights(model, state, path, found)
    target = pick_device(device)
    return Sam2Backend(model.to(target), found, target)


class Sam2Backend:
    """PromptBackend over an official SAM2Base image model."""

    video_propagator = "sam2_memory"  # seglab.video.Tracker follows objects with SAM 2's memory (seglab/video/)

    def __init__(self, model: torch.nn.Module, name: str, device: torch.device):
        self.model, self.name, self.device = model, name, torch.device(device)
        self.image_size = model.image_size
        self.feature_sizes = [(self.image_size // s, self.image_size // s) for s in (4, 8, 16)]

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        x = torch.as_tensor(image, device=self.device).permute(2, 0, 1).float().div(255)
        x = TF.resize(x, [self.image_size, self.image_size], antialias=True)
        x = TF.normalize(x, MEAN, STD)[None]
        _, feats, pos, sizes = self.model._prepare_backbone_features(self.model.forward_image(x))
        backbone = (list(feats), pos[-1:], sizes)  # what SAM 2's video memory takes (seglab/video/sam2_memory.py)
        if self.model.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + self.model.no_mem_embed
        maps = [f.permute(1, 2, 0).reshape(1, -1, *size) for f, size in zip(feats, self.feature_sizes)]
        size = image.shape[:2]
        return ImageEmbedding({"image_embed": maps[-1], "high_res_feats": maps[:-1]}, size, (self.image_size,) * 2,
                              extra={"backbone": backbone})

    def to_input(self, xy: torch.Tensor, embedding: ImageEmbedding) -> torch.Tensor:
        height, width = embedding.original_size
        xy = xy.float().clone()
        xy[..., 0] = xy[..., 0] / width
        xy[..., 1] = xy[..., 1] / height
        return xy * self.image_size

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        coords = [] if points is None else [self.to_input(points, embedding)]
        kinds = [] if labels is None else [labels.int()]
        if boxes is not None:
            coords.insert(0, self.to_input(boxes.reshape(-1, 2, 2), embedding))
            kinds.insert(0, torch.tensor([BOX_LABELS], dtype=torch.int, device=boxes.device).repeat(len(boxes), 1))
        prompt_points = (torch.cat(coords, 1), torch.cat(kinds, 1)) if coords else None
        sparse, dense = self.model.sam_prompt_encoder(points=prompt_points, boxes=None, masks=mask_input)
        low_res, scores, _, _ = self.model.sam_mask_decoder(
            image_embeddings=embedding.features["image_embed"],
            image_pe=self.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
            repeat_image=sparse.shape[0] > 1, high_res_features=embedding.features["high_res_feats"])
        masks = F.interpolate(low_res.float(), embedding.original_size, mode="bilinear", align_corners=False)
        return masks, scores, low_res.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP)
