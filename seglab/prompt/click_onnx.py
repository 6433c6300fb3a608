"""seglab's click model as two ONNX files (image encoder, prompt decoder) and a PromptBackend that runs them.

    paths = export_click_onnx(Predictor("runs/click/best.pt").backend, "out/")  # {"encoder": ..., "decoder": ...}
    predictor = Predictor(OnnxClickBackend(paths["encoder"], paths["decoder"]))  # same API, onnxruntime only

The split is the model's own (seglab/models/prompt/click_seg.py), with BatchNorm folded as ClickBackend runs it:
encoder.onnx: `image` float32 [1, 3, S, S] RGB 0..255, the image resized so its longer side is S and
  zero-padded bottom / right (click_backend.square_input); normalisation inside -> `s8` [1, C, S/8, S/8],
  `s4` [1, C/2, S/4, S/4].
decoder.onnx: `s8`, `s4`, `point_coords` float32 [B, N, 2] (x, y) in the S x S input's continuous pixels
  (a click on pixel (i, j) of the resized image is at (i + 0.5, j + 0.5)), `point_labels` int64 [B, N]
  (1 / 0, -1 padding: a prompt without clicks gives one padding point), `boxes` float32 [B, 4] in the same
  pixels ([0, 0, -1, -1], a box with no cell inside, when there is none), `mask_input` [B, 1, 256, 256]
  low-res logits and `has_mask_input` [B] (1 uses it, 0 ignores it) -> `logits` [B, 4, S/4, S/4] (channel 0
  the single mask, 1-3 the multimask candidates) and `iou` [B, 4]. B and N are dynamic.
The encoder file's metadata (`seglab_prompt`: JSON {size, mean, std, name}) is what OnnxClickBackend needs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seglab.prompt.backend import LOW_RES, ImageEmbedding, check_image, check_prompts
from seglab.prompt.click_backend import MULTI, SINGLE, ClickBackend, square_input

NO_BOX = (0.0, 0.0, -1.0, -1.0)  # a box that holds no grid cell: the model's box map stays 0
NO_MASK = -1e4  # logits whose sigmoid is 0 in float32: the model's previous-mask map stays 0
METADATA_KEY = "seglab_prompt"
INPUTS = ["s8", "s4", "point_coords", "point_labels", "boxes", "mask_input", "has_mask_input"]


class ClickEncoderForOnnx(nn.Module):
    def __init__(self, backend: ClickBackend):
        super().__init__()
        self.model = backend.model
        self.register_buffer("mean", backend.mean.detach().cpu().clone(), persistent=False)
        self.register_buffer("std", backend.std.detach().cpu().clone(), persistent=False)

    def forward(self, image: torch.Tensor):
        features = self.model.embed((image - self.mean) / self.std)
        return features["s8"], features["s4"]


class ClickDecoderForOnnx(nn.Module):
    """model.decode with every prompt given (absent ones as NO_BOX / a padding point / NO_MASK logits)."""

    def __init__(self, backend: ClickBackend):
        super().__init__()
        self.model = backend.model

    def forward(self, s8, s4, point_coords, point_labels, boxes, mask_input, has_mask_input):
        has = has_mask_input[:, None, None, None]
        previous = has * mask_input + (1 - has) * NO_MASK
        return self.model.decode({"s8": s8, "s4": s4}, point_coords, point_labels, boxes, previous)


def export_click_onnx(backend: ClickBackend, out_dir: str | Path, opset: int = 17) -> dict[str, Path]:
    """Write `encoder.onnx` and `decoder.onnx` of a click-model backend into out_dir."""
    if not isinstance(backend, ClickBackend):
        raise TypeError(f"export_click_onnx exports seglab click models; {backend.name!r} is a {type(backend).__name__}")
    try:
        import onnx
    except ImportError:
        raise ImportError("exporting the click model to ONNX needs the onnx package: pip install 'seglab[onnx]'") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"encoder": out / "encoder.onnx", "decoder": out / "decoder.onnx"}
    device = backend.device
    backend.model.to("cpu").eval()
    backend.mean, backend.std = backend.mean.cpu(), backend.std.cpu()
    size = backend.size
    try:
        encoder = ClickEncoderForOnnx(backend).eval()  # eval wrappers: export restores their mode afterwards
        with torch.no_grad():
            s8, s4 = encoder(torch.zeros(1, 3, size, size))
            examples = (s8, s4, torch.full((2, 3, 2), size / 2), torch.tensor([[1, 0, -1]] * 2),
                        torch.tensor([NO_BOX] * 2), torch.zeros(2, 1, LOW_RES, LOW_RES), torch.zeros(2))
            torch.onnx.export(encoder, (torch.zeros(1, 3, size, size),), str(paths["encoder"]), dynamo=False,
                              opset_version=opset, input_names=["image"], output_names=["s8", "s4"])
            prompts = {0: "prompts"}
            torch.onnx.export(ClickDecoderForOnnx(backend).eval(), examples, str(paths["decoder"]), dynamo=False,
                              opset_version=opset, input_names=INPUTS, output_names=["logits", "iou"],
                              dynamic_axes={"point_coords": {0: "prompts", 1: "points"},
                                            "point_labels": {0: "prompts", 1: "points"}, "boxes": prompts,
                                            "mask_input": prompts, "has_mask_input": prompts, "logits": prompts,
                                            "iou": prompts})
    finally:
        backend.model.to(device).eval()
        backend.mean, backend.std = backend.mean.to(device), backend.std.to(device)
    proto = onnx.load(str(paths["encoder"]))
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({"size": size, "mean": (backend.mean.flatten().cpu() / 255).tolist(),
                              "std": (backend.std.flatten().cpu() / 255).tolist(), "name": backend.name})
    onnx.save(proto, str(paths["encoder"]))
    return paths


class OnnxClickBackend:
    """PromptBackend running export_click_onnx's two files on onnxruntime (CPU); the frame is ClickBackend's."""

    def __init__(self, encoder: str | Path, decoder: str | Path, providers=("CPUExecutionProvider",)):
        import onnxruntime as ort

        for path in (encoder, decoder):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: ONNX file not found (write it with seglab export task=prompt)")
        self.encoder = ort.InferenceSession(str(encoder), providers=list(providers))
        self.decoder = ort.InferenceSession(str(decoder), providers=list(providers))
        meta = self.encoder.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ValueError(f"{encoder}: no {METADATA_KEY!r} metadata: not a seglab click-model encoder export")
        info = json.loads(meta[METADATA_KEY])
        self.size, self.name, self.device = int(info["size"]), f"onnx:{info['name']}", torch.device("cpu")
        self.full_size = lambda logits, embedding: ClickBackend.full_size(self, logits, embedding)

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        image = check_image(image)
        canvas, input_size = square_input(image, self.size)
        x = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        s8, s4 = self.encoder.run(["s8", "s4"], {"image": x})
        return ImageEmbedding({"s8": s8, "s4": s4}, tuple(image.shape[:2]), input_size,
                              {"scale": self.size / max(image.shape[:2])})

    def decode(self, embedding: ImageEmbedding, points, labels, boxes, mask_input, multimask: bool):
        batch = check_prompts(points, labels, boxes, mask_input)
        scale = embedding.extra["scale"]
        if points is None:
            coords, kinds = np.zeros((batch, 1, 2), np.float32), np.full((batch, 1), -1, np.int64)
        else:
            coords = ((points.float().cpu() + 0.5) * scale).numpy()
            kinds = labels.cpu().numpy().astype(np.int64)
        box = (np.tile(np.array(NO_BOX, np.float32), (batch, 1)) if boxes is None
               else (boxes.float().cpu() * scale).numpy())
        has = np.full(batch, float(mask_input is not None), np.float32)
        masks_in = (mask_input.float().cpu().numpy() if mask_input is not None
                    else np.zeros((batch, 1, LOW_RES, LOW_RES), np.float32))
        logits, iou = self.decoder.run(["logits", "iou"], dict(zip(INPUTS, (
            embedding.features["s8"], embedding.features["s4"], coords, kinds, box, masks_in, has))))
        chosen = MULTI if multimask else SINGLE
        logits, scores = torch.from_numpy(logits[:, chosen]), torch.from_numpy(iou[:, chosen])
        low_res = torch.nn.functional.interpolate(logits, size=(LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
        return self.full_size(logits, embedding), scores, low_res
