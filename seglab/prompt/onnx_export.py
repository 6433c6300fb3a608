"""SAM as two ONNX files (image encoder, prompt decoder) and a PromptBackend that runs them on onnxruntime.

    paths = export_onnx(Predictor("sam_vit_b_01ec64.pth"), "out/")   # -> {"encoder": ..., "decoder": ...}
    predictor = Predictor(OnnxSamBackend(paths["encoder"], paths["decoder"]))   # same API, no torch model

encoder.onnx: `image` float32 [1, 3, h, w] RGB pixel values 0..255, the image already resized so its
  longer side is 1024 (h, w dynamic) -> `image_embeddings` [1, 256, 64, 64]. Normalisation and the
  bottom-right padding to 1024 x 1024 happen inside, as in Sam.preprocess.
decoder.onnx: `image_embeddings` [1, 256, 64, 64], `point_coords` float32 [B, N, 2] in the 1024 input
  frame (original pixels times the resize factor), `point_labels` float32 [B, N] (1 foreground,
  0 background, -1 padding, 2 / 3 a box's top-left / bottom-right corner; SAM's own rule: a prompt
  without a box ends with one padding point), `mask_input` [B, 1, 256, 256], `has_mask_input` [B]
  (1 uses mask_input, 0 ignores it) -> `low_res_logits` [B, 4, 256, 256] and `scores` [B, 4]:
  index 0 the single-mask answer, 1..3 the multimask answers. B and N are dynamic.
Upsampling to the original size is left to the caller (OnnxSamBackend does it as Sam.postprocess_masks).
Only SAM / MobileSAM backends (sam_official.SamBackend) export here. SAM 2 / 2.1 exports with
seglab/prompt/sam2_onnx_export.py: its encoder also gives two high-res maps, which its decoder takes with
these prompt inputs; the same two outputs; `prompt_embeddings` is shared.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seglab.prompt.backend import LOW_RES, MULTIMASK_OUTPUTS, ImageEmbedding
from seglab.prompt.sam_official import IMAGE_SIZE, SamBackend, longest_side_shape

BOX_LABELS = (2.0, 3.0)
PADDING_LABEL = -1.0


class SamEncoderForOnnx(nn.Module):
    def __init__(self, sam: nn.Module):
        super().__init__()
        self.image_encoder = sam.image_encoder
        self.register_buffer("mean", sam.pixel_mean.detach().clone(), persistent=False)
        self.register_buffer("std", sam.pixel_std.detach().clone(), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - self.mean) / self.std
        x = F.pad(x, (0, IMAGE_SIZE - x.shape[-1], 0, IMAGE_SIZE - x.shape[-2]))
        return self.image_encoder(x)


class SamDecoderForOnnx(nn.Module):
    """SAM's prompt encoder written without boolean indexing (labels select embeddings by masks) + mask decoder."""

    def __init__(self, sam: nn.Module):
        super().__init__()
        self.prompt_encoder, self.mask_decoder = sam.prompt_encoder, sam.mask_decoder

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        sparse, dense = prompt_embeddings(self.prompt_encoder, point_coords, point_labels, mask_input, has_mask_input)
        low_res, scores = self.mask_decoder.predict_masks(image_embeddings, self.prompt_encoder.get_dense_pe(),
                                                          sparse, dense)
        return low_res, scores


def prompt_embeddings(pe: nn.Module, point_coords, point_labels, mask_input, has_mask_input):
    """(sparse, dense) of a SAM / SAM 2 PromptEncoder `pe` (the two share these parts), written for export:
    labels select the point embeddings by masks, has_mask_input picks mask_input or the no-mask embedding."""
    height, width = pe.input_image_size
    coords = (point_coords + 0.5) / torch.tensor([width, height], dtype=point_coords.dtype)
    sparse = pe.pe_layer._pe_encoding(coords)
    labels = point_labels[..., None]
    sparse = sparse * (labels != PADDING_LABEL) + pe.not_a_point_embed.weight * (labels == PADDING_LABEL)
    for i, embedding in enumerate(pe.point_embeddings):
        sparse = sparse + embedding.weight * (labels == i)
    has = has_mask_input[:, None, None, None]
    dense = has * pe.mask_downscaling(mask_input) + (1 - has) * pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
    return sparse, dense


def export_target(model, out_dir: str | Path, backend_type: type, what: str, instead: str):
    """(the backend of `model` (a backend, Predictor or checkpoint path), {"encoder", "decoder"} paths in
    out_dir, created); TypeError naming `instead` when the backend is not a `backend_type`."""
    from seglab.prompt.predictor import Predictor

    backend = (model if isinstance(model, Predictor) else Predictor(model, device="cpu")).backend
    if not isinstance(backend, backend_type):
        raise TypeError(f"{what}; {backend.name!r} is a {type(backend).__name__} ({instead})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return backend, {"encoder": out / "encoder.onnx", "decoder": out / "decoder.onnx"}


def export_onnx(model, out_dir: str | Path, opset: int = 17) -> dict[str, Path]:
    """Write `encoder.onnx` and `decoder.onnx` of a SAM backend (or Predictor / checkpoint path) into out_dir."""
    backend, paths = export_target(model, out_dir, SamBackend, "export_onnx exports SAM / MobileSAM backends",
                                   "SAM 2: seglab.prompt.sam2_onnx_export.export_sam2_onnx")
    sam = backend.model.to("cpu").eval()
    embeddings = torch.zeros(1, sam.prompt_encoder.embed_dim, *sam.prompt_encoder.image_embedding_size)
    examples = (embeddings, torch.zeros(2, 3, 2), torch.tensor([[1.0, 0.0, -1.0]] * 2),
                torch.zeros(2, 1, LOW_RES, LOW_RES), torch.zeros(2))
    with torch.no_grad():
        # eval(): export restores the wrappers' mode after tracing; a new module's is training, which would
        # leave the backend's SAM in training mode
        torch.onnx.export(SamEncoderForOnnx(sam).eval(), (torch.zeros(1, 3, IMAGE_SIZE, 768),),
                          str(paths["encoder"]), dynamo=False, opset_version=opset, input_names=["image"],
                          output_names=["image_embeddings"], dynamic_axes={"image": {2: "height", 3: "width"}})
        torch.onnx.export(SamDecoderForOnnx(sam).eval(), examples, str(paths["decoder"]), dynamo=False,
                          opset_version=opset,
                          input_names=["image_embeddings", "point_coords", "point_labels", "mask_input",
                                       "has_mask_input"],
                          output_names=["low_res_logits", "scores"],
                          dynamic_axes={"point_coords": {0: "prompts", 1: "points"},
                                        "point_labels": {0: "prompts", 1: "points"},
                                        "mask_input": {0: "prompts"}, "has_mask_input": {0: "prompts"},
                                        "low_res_logits": {0: "prompts"}, "scores": {0: "prompts"}})
    sam.to(backend.device)
    return paths


class OnnxSamBackend:
    """PromptBackend running export_onnx's two files on onnxruntime (CPU); pre/post-processing as SamBackend."""

    def __init__(self, encoder: str | Path, decoder: str | Path, providers=("CPUExecutionProvider",)):
        import onnxruntime as ort

        for path in (encoder, decoder):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: ONNX file not found (write it with seglab.prompt.export_onnx)")
        self.encoder = ort.InferenceSession(str(encoder), providers=list(providers))
        self.decoder = ort.InferenceSession(str(decoder), providers=list(providers))
        self.name, self.device, self.image_size = f"onnx:{Path(encoder).parent.name}", torch.device("cpu"), IMAGE_SIZE
        self.scale = SamBackend.scale

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        from PIL import Image

        height, width = image.shape[:2]
        new_h, new_w = longest_side_shape(height, width, self.image_size)
        resized = np.array(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
        x = resized.transpose(2, 0, 1)[None].astype(np.float32)
        (features,) = self.encoder.run(None, {"image": x})
        return ImageEmbedding(features, (height, width), (new_h, new_w))

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        batch = next(len(x) for x in (points, boxes, mask_input) if x is not None)
        coords, kinds = [torch.zeros(batch, 0, 2)], [torch.zeros(batch, 0)]
        if points is not None:
            coords.append(self.scale(self, points.float(), embedding))
            kinds.append(labels.float())
        if boxes is not None:
            coords.append(self.scale(self, boxes.reshape(-1, 2, 2).float(), embedding))
            kinds.append(torch.tensor([BOX_LABELS]).repeat(batch, 1))
        elif points is not None:  # SAM's padding point when no box is given
            coords.append(torch.zeros(batch, 1, 2))
            kinds.append(torch.full((batch, 1), PADDING_LABEL))
        has_mask = torch.full((batch,), float(mask_input is not None))
        masks_in = mask_input.float() if mask_input is not None else torch.zeros(batch, 1, LOW_RES, LOW_RES)
        low_res, scores = self.decoder.run(None, {
            "image_embeddings": embedding.features, "point_coords": torch.cat(coords, 1).numpy(),
            "point_labels": torch.cat(kinds, 1).numpy(), "mask_input": masks_in.numpy(),
            "has_mask_input": has_mask.numpy()})
        pick = slice(1, 1 + MULTIMASK_OUTPUTS) if multimask else slice(0, 1)
        low_res, scores = torch.from_numpy(low_res[:, pick]), torch.from_numpy(scores[:, pick])
        return upsample(low_res, embedding.input_size, embedding.original_size), scores, low_res


def upsample(low_res: torch.Tensor, input_size, original_size) -> torch.Tensor:
    """Low-res logits -> the original image's size, as Sam.postprocess_masks (pad frame, crop, resize)."""
    masks = F.interpolate(low_res, (IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    masks = masks[..., : input_size[0], : input_size[1]]
    return F.interpolate(masks, original_size, mode="bilinear", align_corners=False)
