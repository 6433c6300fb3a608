"""SAM 2 / 2.1 image models as two ONNX files (image encoder, prompt decoder) and a PromptBackend running them.

    paths = export_sam2_onnx(Predictor("sam2.1_hiera_tiny.pt"), "out/")   # -> {"encoder": ..., "decoder": ...}
    predictor = Predictor(OnnxSam2Backend(paths["encoder"], paths["decoder"]))   # same API, no torch model

encoder.onnx: `image` float32 [1, 3, S, S] RGB pixel values 0..255, the image already resized (not padded)
  to the model's square S (1024), as Sam2Backend resizes it (torchvision, antialiased) -> `image_embed`
  [1, 256, S/16, S/16], `high_res_feats_0` [1, 32, S/4, S/4], `high_res_feats_1` [1, 64, S/8, S/8]: the
  mask decoder's inputs, its conv_s0 / conv_s1 already applied and no_mem_embed added, as Sam2Backend.embed.
  Normalisation (ImageNet mean / std of 0..1 values) happens inside.
decoder.onnx: the three encoder outputs, `point_coords` float32 [B, N, 2] in the S x S input's pixels,
  `point_labels` float32 [B, N] (1 / 0, -1 padding, 2 / 3 a box's corners; SAM 2's rule: a box enters as
  its two corners in front of the clicks and every prompt with points ends with one padding point),
  `mask_input` [B, 1, 256, 256], `has_mask_input` [B] -> `low_res_logits` [B, 4, 256, 256] (not clamped)
  and `scores` [B, 4]: index 0 the single-mask answer (with SAM 2's fallback to the most confident
  multimask answer when the single mask is unstable, if the model declares it), 1..3 the multimask
  answers; the convention of seglab/prompt/onnx_export.py. B and N are dynamic.
OnnxSam2Backend scales prompts, upsamples to the original size and clamps the low-res logits to
[-32, 32] as Sam2Backend does. The embedding holds no video-memory features: it serves images only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF

from seglab.prompt.backend import LOW_RES, MULTIMASK_OUTPUTS, ImageEmbedding
from seglab.prompt.onnx_export import BOX_LABELS, PADDING_LABEL, export_target, prompt_embeddings
from seglab.prompt.sam2_official import LOW_RES_CLAMP, MEAN, STD, Sam2Backend

ENCODER_OUTPUTS = ["image_embed", "high_res_feats_0", "high_res_feats_1"]
DECODER_INPUTS = [*ENCODER_OUTPUTS, "point_coords", "point_labels", "mask_input", "has_mask_input"]


class Sam2EncoderForOnnx(nn.Module):
    """Normalisation + SAM2Base.forward_image + the flattening Sam2Backend.embed does, as three maps."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor):
        x = (image / 255 - self.mean) / self.std
        _, feats, _, sizes = self.model._prepare_backbone_features(self.model.forward_image(x))
        if self.model.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + self.model.no_mem_embed
        s0, s1, embed = [f.permute(1, 2, 0).reshape(1, -1, *size) for f, size in zip(feats, sizes)]
        return embed, s0, s1


class Sam2DecoderForOnnx(nn.Module):
    """SAM 2's prompt encoder (the export-friendly form shared with SAM) + mask decoder, all four answers."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.prompt_encoder, self.mask_decoder = model.sam_prompt_encoder, model.sam_mask_decoder

    def forward(self, image_embed, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input,
                has_mask_input):
        sparse, dense = prompt_embeddings(self.prompt_encoder, point_coords, point_labels, mask_input, has_mask_input)
        decoder = self.mask_decoder
        low_res, scores, _, _ = decoder.predict_masks(
            image_embed, self.prompt_encoder.get_dense_pe(), sparse, dense, repeat_image=True,
            high_res_features=[high_res_feats_0, high_res_feats_1])
        single, single_score = low_res[:, :1], scores[:, :1]
        if decoder.dynamic_multimask_via_stability:  # what MaskDecoder.forward(multimask_output=False) answers
            single, single_score = decoder._dynamic_multimask_via_stability(low_res, scores)
        return torch.cat([single, low_res[:, 1:]], 1), torch.cat([single_score, scores[:, 1:]], 1)


def export_sam2_onnx(model, out_dir: str | Path, opset: int = 17) -> dict[str, Path]:
    """Write `encoder.onnx` and `decoder.onnx` of a SAM 2 backend (or Predictor / checkpoint path) into out_dir."""
    backend, paths = export_target(model, out_dir, Sam2Backend, "export_sam2_onnx exports SAM 2 backends",
                                   "SAM / MobileSAM: seglab.prompt.export_onnx")
    sam2 = backend.model.to("cpu").eval()
    # eval(): torch.onnx.export restores the wrapper's mode afterwards, and a new module is in training mode,
    # which would leave SAM 2's mask decoder training (no single-mask stability fallback)
    encoder, decoder = Sam2EncoderForOnnx(sam2).eval(), Sam2DecoderForOnnx(sam2).eval()
    image = torch.zeros(1, 3, backend.image_size, backend.image_size)
    prompts = {"point_coords": {0: "prompts", 1: "points"}, "point_labels": {0: "prompts", 1: "points"},
               "mask_input": {0: "prompts"}, "has_mask_input": {0: "prompts"},
               "low_res_logits": {0: "prompts"}, "scores": {0: "prompts"}}
    try:
        with torch.no_grad():
            features = encoder(image)
            examples = (*features, torch.zeros(2, 3, 2), torch.tensor([[1.0, 0.0, PADDING_LABEL]] * 2),
                        torch.zeros(2, 1, LOW_RES, LOW_RES), torch.zeros(2))
            torch.onnx.export(encoder, (image,), str(paths["encoder"]), dynamo=False, opset_version=opset,
                              input_names=["image"], output_names=ENCODER_OUTPUTS)
            torch.onnx.export(decoder, examples, str(paths["decoder"]), dynamo=False, opset_version=opset,
                              input_names=DECODER_INPUTS, output_names=["low_res_logits", "scores"],
                              dynamic_axes=prompts)
    finally:
        sam2.to(backend.device)
    return paths


class OnnxSam2Backend:
    """PromptBackend running export_sam2_onnx's two files on onnxruntime (CPU); pre/post-processing as Sam2Backend."""

    to_input = Sam2Backend.to_input  # original pixels -> the S x S input's pixels (uses only self.image_size)

    def __init__(self, encoder: str | Path, decoder: str | Path, providers=("CPUExecutionProvider",)):
        import onnxruntime as ort

        for path in (encoder, decoder):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: ONNX file not found (write it with "
                                        f"seglab.prompt.sam2_onnx_export.export_sam2_onnx)")
        self.encoder = ort.InferenceSession(str(encoder), providers=list(providers))
        self.decoder = ort.InferenceSession(str(decoder), providers=list(providers))
        names = [o.name for o in self.encoder.get_outputs()]
        if names != ENCODER_OUTPUTS:
            raise ValueError(f"{encoder}: outputs {names}, not a SAM 2 encoder's {ENCODER_OUTPUTS} "
                             f"(a SAM / MobileSAM pair runs on seglab.prompt.OnnxSamBackend)")
        self.image_size = int(self.encoder.get_inputs()[0].shape[-1])  # the traced square S
        self.name, self.device = f"onnx:{Path(encoder).parent.name}", torch.device("cpu")

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        x = torch.as_tensor(image).permute(2, 0, 1).float()
        x = TF.resize(x, [self.image_size, self.image_size], antialias=True)[None]
        embed, s0, s1 = self.encoder.run(ENCODER_OUTPUTS, {"image": x.numpy()})
        return ImageEmbedding({"image_embed": embed, "high_res_feats": [s0, s1]}, image.shape[:2],
                              (self.image_size,) * 2)

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        batch = next(len(x) for x in (points, boxes, mask_input) if x is not None)
        coords, kinds = [torch.zeros(batch, 0, 2)], [torch.zeros(batch, 0)]
        if boxes is not None:  # the corners first, then the clicks, then SAM 2's padding point
            coords.append(self.to_input(boxes.reshape(-1, 2, 2), embedding))
            kinds.append(torch.tensor([BOX_LABELS]).repeat(batch, 1))
        if points is not None:
            coords.append(self.to_input(points, embedding))
            kinds.append(labels.float())
        if len(coords) > 1:
            coords.append(torch.zeros(batch, 1, 2))
            kinds.append(torch.full((batch, 1), PADDING_LABEL))
        has_mask = torch.full((batch,), float(mask_input is not None))
        masks_in = mask_input.float() if mask_input is not None else torch.zeros(batch, 1, LOW_RES, LOW_RES)
        s0, s1 = embedding.features["high_res_feats"]
        low_res, scores = self.decoder.run(None, {
            "image_embed": embedding.features["image_embed"], "high_res_feats_0": s0, "high_res_feats_1": s1,
            "point_coords": torch.cat(coords, 1).numpy(), "point_labels": torch.cat(kinds, 1).numpy(),
            "mask_input": masks_in.numpy(), "has_mask_input": has_mask.numpy()})
        pick = slice(1, 1 + MULTIMASK_OUTPUTS) if multimask else slice(0, 1)
        low_res, scores = torch.from_numpy(low_res[:, pick]), torch.from_numpy(scores[:, pick])
        masks = F.interpolate(low_res, embedding.original_size, mode="bilinear", align_corners=False)
        return masks, scores, low_res.clamp(-LOW_RES_CLAMP, LOW_RES_CLAMP)
