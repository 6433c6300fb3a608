"""Every configuration key in one declarative table: type, default, help, allowed values, and who uses it.

seglab/config.py builds the `Config` dataclass, parsing, coercion and validation from this table;
`seglab help` and docs/configuration.md are printed from it (`python -m seglab.config_keys >
docs/configuration.md` regenerates the reference; tests/test_config_docs.py keeps it in sync).

An entry declares facts, never code paths: `modes` lists the modes that read the key, `formats` the
dataset formats that read it (empty = every format), `choices` the allowed values, `check` a range,
`parse` a function that turns a structured value into its canonical form or raises ValueError.
Checks that need torch (loss names, encoder names) import it only when the key is validated.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from seglab.config_checks import (BACKEND_NAMES, Check, above, at_least, in_range, parse_anchor_sizes,  # noqa: F401
                                  parse_backends, parse_class_weights, parse_decoder_channels, parse_device,
                                  parse_encoder, parse_imgsz, parse_loss, parse_scales, parse_strides,
                                  parse_time_text)

MODES = ("train", "val", "predict", "export", "benchmark", "models", "verify", "serve", "track")  # == seglab.modes.MODES (tested)
ALL = MODES
TRAIN, VAL, PREDICT, EXPORT, BENCHMARK, MODELS, VERIFY, SERVE, TRACK = ((m,) for m in MODES)
INFER = ("val", "predict")  # the inference keys: val scores what predict writes, with the same options
DATA_MODES = ("train", "val", "verify")  # modes that open a dataset
# Tasks: "" = read it from the model / checkpoint. Add a task here when its implementation lands.
TASKS = ("semantic", "instance", "panoptic", "prompt", "video")  # == seglab.tasks.TASKS (tested)
SEMANTIC_TASK, INSTANCE_TASK, PANOPTIC_TASK, PROMPT_TASK, VIDEO_TASK = TASKS  # Key.tasks


@dataclass(frozen=True)
class Key:
    name: str
    type: Any  # int | float | str | bool | typing.Any (structured: see `shape`)
    default: Any
    help: str
    modes: tuple[str, ...]
    choices: tuple = ()
    check: Check | None = None
    parse: Callable[[Any], Any] | None = None
    formats: tuple[str, ...] = ()  # dataset formats that read the key; () = every format
    tasks: tuple[str, ...] = ()  # tasks that read the key (seglab/tasks/); () = every task
    shape: str = ""  # the accepted forms of a structured (typing.Any) value
    aliases: dict = field(default_factory=dict)  # other spellings -> the choice they mean
    model_argument: bool = False  # passed to the architecture when its constructor takes it

    @property
    def type_text(self) -> str:
        return self.shape or getattr(self.type, "__name__", str(self.type))

    @property
    def allowed_text(self) -> str:
        """'one of a, b' / 'must be at least 1' / '' (anything of the type)."""
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(show(c) for c in self.choices))
        if self.check:
            parts.append(self.check.text)
        return "; ".join(parts)


def show(value) -> str:
    """A value as it is written in YAML / on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return '""' if value == "" else str(value)


ARCH = ("train", "benchmark", "models")  # modes that build an architecture from the model arguments
INSTANCE_MODEL = (*ARCH, *INFER)  # instance inference options: constructor arguments that val / predict override

KEY_TABLE: list[Key] = [
    # --- what to run on ---
    Key("task", str, "", "what the model predicts; empty = from the model or checkpoint", ALL, choices=("", *TASKS)),
    Key("model", str, "", "architecture name (see `seglab models`; \"\" = the task's default: unet for semantic, "
        "maskrcnn for instance) for train / benchmark, or a checkpoint .pt / run folder / exported .onnx for val, "
        "predict, export, benchmark; serve: a promptable model (click-model checkpoint, SAM weights) or a semantic / "
        "instance checkpoint; video val / track: a promptable checkpoint", ("train", "val", "predict", "export", "benchmark",
                                                                      "serve", "track")),
    Key("data", str, "", 'dataset root folder; "" or "sample" = the bundled Oxford-IIIT Pet sample (train); '
        "val defaults to the checkpoint's training data", DATA_MODES),
    Key("dataset", str, "auto", "dataset format; auto = detected from the folder layout", DATA_MODES,
        choices=("auto", "pet", "camvid", "voc", "folder", "coco", "yolo", "penn_fudan", "per_object_png",
                 "instance_folder")),
    Key("classes", str, "", "Oxford-IIIT Pet classes: trimap (pet, background, border; the default) | binary "
        "(background, pet; border ignored)", DATA_MODES, choices=("", "trimap", "binary"), formats=("pet",)),
    Key("split", str, "val", "the split `seglab val` scores (e.g. val, test, trainval)", VAL),
    Key("download", bool, False, "Oxford-IIIT Pet: fetch the official archives into `data` if missing", DATA_MODES,
        formats=("pet",)),
    Key("val_fraction", float, 0.2, "folder datasets without splits/ lists: held-out fraction for val (seeded)",
        DATA_MODES, check=in_range(0, 1), formats=("folder", "penn_fudan", "per_object_png", "instance_folder")),
    Key("voc_aug", bool, False, "Pascal VOC: train on train_aug (VOC train + SBD, minus VOC val)", DATA_MODES,
        formats=("voc",)),
    # --- model arguments: passed to the architecture when its constructor takes them ---
    Key("width", int, 32, "classic U-Net: channels of the first stage (doubled at each stage)", ARCH,
        check=at_least(1), model_argument=True),
    Key("depth", int, 4, "classic U-Net: number of down / up stages", ARCH, check=at_least(1), model_argument=True),
    Key("upsample", str, "transpose", "classic U-Net decoder upsampling", ARCH, choices=("transpose", "bilinear"),
        model_argument=True),
    Key("norm", str, "batch", "classic U-Net normalisation layers", ARCH, choices=("batch", "group"),
        model_argument=True),
    Key("encoder", str, "", 'encoder-based models: "" = the model\'s default; see `seglab models` (timm:NAME for '
        "any timm model)", ARCH, parse=parse_encoder, model_argument=True),
    Key("encoder_weights", str, "", '"" = random init | imagenet (torchvision / timm / pip package) | path to a '
        "state dict", TRAIN, model_argument=True),
    Key("decoder_channels", typing.Any, None, "decoder widths; null = the model's default", ARCH,
        parse=parse_decoder_channels, shape="null | int | [int, ...]", model_argument=True),
    Key("dropout", float, 0.0, "decoder dropout (pix2pix, fcn*, setr_*, segformer, deeplabv3plus)", ARCH,
        check=in_range(0, 1), model_argument=True),
    Key("output_stride", int, 16, "deeplabv3plus: encoder output stride (later encoder strides become dilations)",
        ARCH, choices=(8, 16, 32), model_argument=True),
    Key("score_threshold", float, 0.05, "instance models: detections kept (score at least this); val / predict: when set, "
        "replaces the checkpoint's", INSTANCE_MODEL, check=in_range(0, 1, True), model_argument=True),
    Key("max_detections", int, 100, "instance models: at most this many detections per image (the best scores); "
        "val / predict: when set, replaces the checkpoint's", INSTANCE_MODEL, check=at_least(1), model_argument=True),
    Key("anchor_sizes", typing.Any, None, "maskrcnn: anchor sizes in pixels, one entry per pyramid level "
        "(5: x/4 .. x/64); null = the model's default [[32], [64], [128], [256], [512]]", ARCH,
        parse=parse_anchor_sizes, shape="null | [int, ...] | [[int, ...], ...]", model_argument=True),
    Key("fpn_channels", int, None, "maskrcnn: channels of the feature pyramid (and so of the RPN head's 3x3 "
        "convolution and the RoI features); null = 256 (the paper's); 128 with mask_head_channels=128 made a DSB2018 "
        "recipe step 1.95x faster (benchmarks/maskrcnn_step.py)", ARCH, check=at_least(1), model_argument=True),
    Key("mask_head_channels", int, None, "maskrcnn: channels of the mask head's four 3x3 convolutions on each RoI's "
        "14x14 features; null = 256 (the paper's); 128 costs a quarter per RoI (DSB2018 recipe: the mask branch is 29 % "
        "of a training step at 256, 12 % at 128, benchmarks/maskrcnn_step.py)", ARCH, check=at_least(1), model_argument=True),
    Key("strides", typing.Any, None, "yolo_seg: pyramid strides (doubling); null = [8, 16, 32]; [4, 8, 16, 32] for "
        "objects of a few pixels", ARCH, parse=parse_strides, shape="null | [int, ...]", model_argument=True),
    Key("freeze_encoder_norm", bool, False, "maskrcnn: freeze the encoder's BatchNorm (with ImageNet weights and "
        "small batches)", ARCH, model_argument=True),
    Key("num_queries", int, 100, "maskformer*: learned queries, each one class-or-no-object + mask (at least the "
        "most segments an image has)", ARCH, check=at_least(1), model_argument=True),
    Key("query_spread", float, 0.1, "maskformer_instance / maskformer: where each query starts, the spread of its "
        "place (a Gaussian over a grid of starting points) as a fraction of the image: about an object's radius",
        ARCH, check=in_range(0.001, 2.7), model_argument=True),
    Key("mask_loss", str, "points", "maskformer*: where the matched masks' BCE + Dice is computed: points = "
        "sampled pixels, half in the segment's box (Mask2Former; enough for large segments), dense = every pixel "
        "at the mask stride (many small objects: penalises a mask spilling over its neighbours); yolo_seg: its "
        "mask BCE inside the true box, points = a 32 x 32 grid at input resolution read bilinearly from the "
        "prototypes (what inference thresholds), dense = every prototype cell against the covered fraction", ARCH,
        choices=("points", "dense"), model_argument=True),
    Key("decoder_layers", int, 3, "maskformer*: transformer decoder layers (queries cross-attend to the 1/32, 1/16, "
        "1/8 maps in turn)", ARCH, check=at_least(1), model_argument=True),
    # --- training ---
    Key("imgsz", typing.Any, 128, "training size (benchmark: input size): S (square) or height x width, e.g. "
        "256x352 or [256, 352]; instance: S, each image's longer side", ("train", "benchmark"), parse=parse_imgsz, shape="S | HxW | [H, W]"),
    Key("resize", str, "stretch", "how training pixels relate to source pixels: stretch = each whole image resized "
        "to imgsz (every built-in dataset); crop = random imgsz crops at native resolution (patch training for "
        "large images; inference then tiles at native scale)", TRAIN, choices=("stretch", "crop"), tasks=(SEMANTIC_TASK,)),
    Key("epochs", int, 30, "epochs to train (the time budget may stop earlier)", TRAIN, check=at_least(1)),
    Key("time", str, "", 'wall-clock budget, e.g. "10m", "90s", "1.5h"; empty = no budget', TRAIN,
        parse=parse_time_text),
    Key("batch", int, 8, "images per batch (train: the global batch over all processes)",
        ("train", "val", "predict", "benchmark"), check=at_least(1)),
    Key("optimizer", str, "adamw", "optimizer", TRAIN, choices=("adamw", "sgd")),
    Key("lr", float, 0.0, "learning rate; 0 = the optimizer's default (adamw 1e-3, sgd 1e-2)", TRAIN,
        check=at_least(0)),
    Key("momentum", float, 0.9, "sgd momentum (Nesterov when above 0)", TRAIN, check=in_range(0, 1, True)),
    Key("weight_decay", float, 1e-4, "weight decay (not on norms and biases)", TRAIN, check=at_least(0)),
    Key("warmup_epochs", float, 1.0, "epochs of linear learning-rate warmup", TRAIN, check=at_least(0)),
    Key("schedule", str, "cosine", "learning-rate schedule after the warmup", TRAIN,
        choices=("cosine", "poly", "onecycle", "constant")),
    Key("loss", typing.Any, "ce+dice", "loss or weighted sum of losses (ce, dice, focal, tversky, lovasz)", TRAIN,
        parse=parse_loss, shape='"ce" | "ce+dice" | "0.5*ce+0.5*dice" | {ce: 0.5, dice: 0.5}', tasks=(SEMANTIC_TASK,)),
    Key("class_weights", typing.Any, "", "loss class weights: median = median frequency of the train masks",
        TRAIN, parse=parse_class_weights, shape='"" | median | [w0, w1, ...]', tasks=(SEMANTIC_TASK,)),
    Key("clip_grad", float, 0.0, "max gradient norm; 0 = no clipping", TRAIN, check=at_least(0)),
    Key("accumulate", int, 1, "batches per optimizer step (gradient accumulation)", TRAIN, check=at_least(1)),
    Key("ema", float, 0.0, "decay of an exponential moving average of the weights (e.g. 0.999); 0 = off", TRAIN,
        check=in_range(0, 1)),
    Key("metric", str, "", 'val metric that picks best.pt and drives early stopping; "" = the task\'s default '
        "(semantic: miou; instance: mask_ap; panoptic: pq; video: j_and_f_mean)", TRAIN,
        choices=("", "miou", "pixel_accuracy", "mean_dice", "loss", "mask_ap", "mask_ap50", "matching_accuracy",
                 "pq", "pq_things", "noc_90", "noc_85", "miou_at_1", "miou_at_3", "miou_at_5", "j_and_f_mean")),
    Key("patience", int, 0, "early stopping: validations without improvement of `metric`; 0 = off", TRAIN,
        check=at_least(0)),
    Key("val_every", int, 1, "validate every N epochs, and always after the last one (epochs or time run out); "
        "best.pt and patience count validated epochs only; the epochs between train for the time validation "
        "would take", TRAIN, check=at_least(1)),
    Key("save_every", int, 0, "also write last.pt every N batches (mid-epoch resume points); 0 = epoch ends only",
        TRAIN, check=at_least(0)),
    Key("resume", str, "", "true (runs/<name>/last.pt), or a run folder or last.pt path: continue exactly where "
        "it stopped", TRAIN),
    Key("augment", bool, True, "training augmentation on (augment_preset) or off", TRAIN),
    Key("augment_preset", str, "light", "with augment=true: none | flip | flips (horizontal + vertical: no up in "
        "the image, e.g. microscopy) | light (crop, flip) | strong (+ rotation, zoom-out, colour) | microscopy "
        "(crop, both flips, grey, inverted and colour-jittered stains)", TRAIN,
        choices=("none", "flip", "flips", "light", "strong", "microscopy")),
    Key("skip_bad", bool, False, "leave out image/mask pairs that cannot be used and list them in "
        "<run>/skipped.txt", ("train", "val")),
    Key("cache", str, "auto", "keep decoded, resized samples in RAM: auto (when under 4 GB) | ram | off", TRAIN,
        choices=("auto", "ram", "off"), aliases={"true": "ram", "false": "off", "none": "off"}),
    Key("workers", int, 0, "DataLoader worker processes (they share the cores of a laptop with training)", TRAIN,
        check=at_least(0)),
    Key("seed", int, 0, "random seed (initialisation, shuffling, augmentation, seeded splits)",
        ("train", "val", "benchmark", "verify"), check=at_least(0)),
    Key("deterministic", bool, False, "torch.use_deterministic_algorithms; the seed is always honoured", TRAIN),
    Key("sync_bn", bool, False, "SyncBatchNorm across processes under torchrun (CUDA only)", TRAIN),
    # --- speed ---
    Key("device", str, "auto", "auto = cuda when available, else cpu", ("train", "val", "predict", "benchmark", "serve",
                                                                            "track"),
        parse=parse_device, shape="auto | cpu | cuda | cuda:N"),
    Key("precision", str, "auto", "auto = bf16 where the hardware runs it natively, fp16 on older CUDA GPUs, fp32 "
        "otherwise", ("train", "val", "predict"), choices=("auto", "bf16", "fp16", "fp32")),
    Key("channels_last", bool, True, "NHWC memory layout for the model and its inputs", ("train", "val", "predict")),
    # --- outputs ---
    Key("project", str, "runs", "parent folder of run folders (benchmark: of benchmark/)", ("train", "benchmark", "track")),
    Key("name", str, "", "run folder name; default: the mode", TRAIN),
    Key("exist_ok", bool, False, "reuse runs/<name> instead of making runs/<name>2", TRAIN),
    Key("samples", int, 6, "overlays written to <run>/samples", TRAIN, check=at_least(0)),
    Key("min_score", float, 0.5, "instance: instances drawn in predict's id PNG and overlay, and matched for "
        "matching accuracy (val, training), have at least this score; predictions.json and COCO AP keep every "
        "detection down to score_threshold; val / predict: unset = the checkpoint's calibrated min_score when it "
        "records one (calibrate_min_score), else 0.5", ("train", "val", "predict"), check=in_range(0, 1, True), tasks=(INSTANCE_TASK,)),
    Key("max_covered", float, 0.5, "instance id maps (painted best score first, so instances do not overlap): a "
        "detection whose mask is more than this fraction covered by better ones is dropped rather than keeping the "
        "sliver left over (what predict writes and val scores); 1 = keep every detection with a free pixel",
        ("train", "val", "predict"), check=in_range(0, 1, True), tasks=(INSTANCE_TASK,)),
    Key("object_size", float, None, "instance: scale each image so its median object is this many pixels across "
        "(equivalent diameter) instead of resizing its longer side to imgsz: in training from the truth (jittered "
        "x0.8-1.25, windows of at most imgsz x imgsz), recorded in best.pt; at val / predict measured on a first "
        "pass, then the image predicted again at that scale (tiles of imgsz). null = the checkpoint's (train: off); "
        "0 = off (docs/instance.md)", ("train", "val", "predict"), check=at_least(0), tasks=(INSTANCE_TASK,)),
    Key("calibrate_min_score", bool, True, "instance train: at the end, choose min_score (0.05..0.95 in steps of "
        "0.05) maximising matching accuracy at IoU 0.5 on up to 64 training images (seeded; one inference pass "
        "each, at their own size) and record it in best.pt, for val / predict", TRAIN, tasks=(INSTANCE_TASK,)),
    Key("calibrate", bool, False, "instance val: first (re)calibrate min_score of the checkpoint on its training "
        "split, as calibrate_min_score does at the end of training, and record it in the checkpoint (atomically); "
        "then score `split` with it", VAL, tasks=(INSTANCE_TASK,)),
    # --- panoptic fusion: a semantic checkpoint for stuff + an instance checkpoint for things (no model=) ---
    Key("semantic_model", str, "", "panoptic fusion (with instance_model=, no model=): the semantic checkpoint "
        "(.pt / run folder) giving the stuff", ("train", "val", "predict", "export", "benchmark"), tasks=(PANOPTIC_TASK,)),
    Key("instance_model", str, "", "panoptic fusion (with semantic_model=, no model=): the instance checkpoint "
        "(.pt / run folder) giving the things", ("train", "val", "predict", "export", "benchmark"), tasks=(PANOPTIC_TASK,)),
    Key("fusion_score", float, 0.5, "panoptic fusion: instances with at least this score are placed (best first)",
        ("train", "val", "predict"), check=in_range(0, 1, True), tasks=(PANOPTIC_TASK,)),
    Key("fusion_overlap", float, 0.5, "panoptic fusion: an instance whose pixels are more than this fraction already "
        "taken by better instances is dropped", ("train", "val", "predict"), check=in_range(0, 1, True), tasks=(PANOPTIC_TASK,)),
    Key("fusion_stuff_area", int, 4096, "panoptic fusion: stuff regions smaller than this many pixels become void",
        ("train", "val", "predict"), check=at_least(0), tasks=(PANOPTIC_TASK,)),
    # --- promptable (task=prompt): the click benchmark and given prompts ---
    Key("max_clicks", int, 20, "prompt: clicks per object in the click benchmark (NoC@85/90 count up to this)",
        ("train", "val"), check=at_least(1), tasks=(PROMPT_TASK,)),
    Key("val_data", str, "", "prompt train: the datasets (comma-separated, each one of data=) whose val splits pick "
        "best.pt; \"\" = every dataset of data=", TRAIN, tasks=(PROMPT_TASK,)),
    Key("objects_per_image", int, 0, "prompt: objects scored per image, spread over its objects (largest first); "
        "0 = all", ("train", "val"), check=at_least(0), tasks=(PROMPT_TASK,)),
    Key("sam_checkpoint", str, "", "prompt train model=sam: the official SAM / MobileSAM .pth whose mask decoder is "
        "fine-tuned (image encoder frozen)", ARCH, model_argument=True),
    Key("sam_type", str, "", "prompt train model=sam: the architecture of sam_checkpoint; \"\" = read from the "
        "weights", ARCH, choices=("", "vit_b", "vit_l", "vit_h", "vit_t"), model_argument=True),
    Key("train_prompt_encoder", bool, False, "prompt train model=sam: fine-tune SAM's prompt encoder too (default: "
        "frozen, only the mask decoder trains)", TRAIN, tasks=(PROMPT_TASK,)),
    Key("embedding_cache", str, "ram", "prompt train model=sam: where the frozen encoder's image embeddings are kept "
        "(computed once per image): ram | disk (<run>/embeddings/, for datasets larger than memory)", TRAIN,
        choices=("ram", "disk"), tasks=(PROMPT_TASK,)),
    Key("init", str, "", "video train: the checkpoint whose weights start the memory tracker: a click model (task "
        "prompt: its weights and architecture arguments start the tracker's click part) or a memory tracker (task "
        "video); \"\" = the model's own initialisation", TRAIN, tasks=(VIDEO_TASK,)),
    Key("clip_frames", int, 3, "video train: frames per simulated training clip (the anchor, then frames tracked one "
        "after the other)", TRAIN, check=at_least(2), tasks=(VIDEO_TASK,)),
    Key("prompts", str, "", "prompt predict: a JSON file mapping images to prompts ({points, labels, box}); track: a JSON list "
        "of {frame, obj_id, points + labels | box | mask} (seglab/tasks/video/prompts_file.py)", ("predict", "track")),
    Key("gif", int, 0, "track: also write <clip>_overlay.gif with its longer side at most this many px (0 = no "
        "GIF); gif_step: keep every n-th frame", TRACK, check=at_least(0)),
    Key("gif_step", int, 2, "track: every n-th frame goes into the GIF (gif=...)", TRACK, check=at_least(1)),
    Key("video_prompt", str, "mask", "video val: how each object is given on its first annotated frame: mask (DAVIS "
        "semi-supervised), box, or click (one click at its innermost pixel)", VAL, choices=("mask", "box", "click"), tasks=(VIDEO_TASK,)),
    Key("resolution", str, "original", "val scoring: original (each image's own size) | train (training size)",
        ("train", "val"), choices=("original", "train")),
    Key("source", str, "", "predict: a file, folder, glob or video; serve: a folder of images to pick from; track: a video "
        "file or a folder of frames", ("predict", "serve", "track")),
    Key("out", str, "", "output folder (predict: default <run folder of the model>/predict; export: a .onnx "
        "file or folder; serve: where saved masks go, default runs/serve)", ("val", "predict", "export", "benchmark",
                                                                             "serve", "track")),
    Key("verbose", bool, True, "print progress and results", ("train", "val", "predict", "export", "benchmark",
                                                               "track")),
    # --- inference (val runs the same inference path as predict, so it takes the same keys) ---
    Key("mode", str, "auto", "auto (stretch; tile when the image's longer side > auto_tile x the training size; "
        "crop-trained models always tile) | stretch | tile; instance and panoptic models: stretch = the whole image "
        "at the training size, tile = overlapping tiles at native scale, objects merged across the seams (panoptic "
        "stuff: the nearest tile's, one segment per class; a panoptic fusion refuses tile)", INFER,
        choices=("auto", "stretch", "tile")),
    Key("auto_tile", float, 8.0, "mode=auto: tile images whose longer side exceeds this many training sizes",
        INFER, check=above(0)),
    Key("tile", int, 0, "tiling: tile size in pixels at the training scale; 0 = the training size", INFER,
        check=at_least(0)),
    Key("overlap", float, 0.25, "tiling: fraction of a tile shared with its neighbour", INFER,
        check=in_range(0, 1)),
    Key("blend", str, "gaussian", "tiling: weights of overlapping tiles", INFER, choices=("gaussian", "constant"), tasks=(SEMANTIC_TASK,)),
    Key("tta", bool, False, "test-time augmentation; semantic: mean probabilities over horizontal flip x `scales`; "
        "instance: the detections of the image and the mirror images the model trained on (both flips after "
        "augment_preset flips / microscopy, else the horizontal one) merged into one set (box IoU 0.55; mean "
        "mask, score = summed over the views)", INFER, tasks=(SEMANTIC_TASK, INSTANCE_TASK)),
    Key("scales", typing.Any, None, "tta: image scales; null = [0.75, 1.0, 1.25]", INFER, parse=parse_scales,
        shape="null | number | [number, ...]", tasks=(SEMANTIC_TASK,)),
    Key("save_probs", bool, False, "also <name>_probs.npy, softmax probabilities float16 [C, H, W]", PREDICT, tasks=(SEMANTIC_TASK,)),
    Key("save_frames", bool, False, "videos: also per-frame class-index PNGs (instance: id PNGs) in <name>_frames/",
        PREDICT, tasks=(SEMANTIC_TASK, INSTANCE_TASK)),
    Key("smooth", float, 0.0, "videos: temporal smoothing a, 0 = off; semantic: each pixel's class probabilities are "
        "averaged over frames (a x previous + (1 - a) x this frame, labels = argmax); instance: a tracked object's "
        "score is averaged so, and drawn when the average >= min_score (ids stay stable across frames either way)",
        PREDICT, check=in_range(0, 1), tasks=(SEMANTIC_TASK, INSTANCE_TASK)),
    Key("compile", bool, False, "torch.compile with inductor freezing (compiles on first use)", PREDICT),
    Key("threads", int, 0, "CPU threads for torch and onnxruntime; 0 = torch's default", ("predict", "benchmark"),
        check=at_least(0)),
    Key("format", str, "onnx", "export format", EXPORT, choices=("onnx",)),
    Key("opset", int, 17, "ONNX opset version", EXPORT, check=in_range(11, 23, True)),
    Key("backends", str, "eager,channels_last,fast,compile,onnxruntime", "comma-separated backends to time",
        BENCHMARK, parse=parse_backends),
    Key("repeats", int, 10, "timed runs per backend and batch size (interleaved)", BENCHMARK, check=at_least(1)),
    # --- serve (the annotation page, seglab/serve/) ---
    Key("host", str, "127.0.0.1", "address the page is served on; 0.0.0.0 = every network interface (warned: no "
        "login)", SERVE),
    Key("port", int, 8000, "port of the page; 0 = a free one", SERVE, check=in_range(0, 65535, True)),
    Key("max_upload_mb", float, 20.0, "largest image file the page accepts, in MB (larger: HTTP 413)", SERVE,
        check=above(0)),
    Key("max_video_frames", int, 300, "most frames a clip opened in the page's video view may have (more: HTTP 413)",
        SERVE, check=at_least(1)),
]

KEYS_BY_NAME: dict[str, Key] = {k.name: k for k in KEY_TABLE}
MODEL_ARGUMENTS = tuple(k.name for k in KEY_TABLE if k.model_argument)


def mode_keys(mode: str) -> list[Key]:
    return [k for k in KEY_TABLE if mode in k.modes]


def describe(key: Key) -> list[str]:
    """The full description of one key, one fact per line (`seglab help KEY`, docs)."""
    lines = [f"{key.name} ({key.type_text}, default {show(key.default)})",
             f"  {key.help}"]
    if key.allowed_text:
        lines.append(f"  allowed: {key.allowed_text}")
    if key.aliases:
        lines.append("  also accepted: " + ", ".join(f"{a} (= {c})" for a, c in key.aliases.items()))
    lines.append(f"  modes: {', '.join(key.modes)}")
    if key.formats:
        lines.append(f"  dataset formats: {', '.join(key.formats)}")
    if key.tasks:
        lines.append(f"  tasks: {', '.join(key.tasks)}")
    if key.model_argument:
        lines.append("  model argument: only architectures whose constructor takes it (see `seglab models`)")
    return lines


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def reference_markdown() -> str:
    """docs/configuration.md: every key, by mode, then each key in full."""
    out = ["# Configuration reference", "",
           "<!-- generated by `python -m seglab.config_keys > docs/configuration.md` from seglab/config_keys.py; "
           "do not edit by hand (tests/test_config_docs.py checks it) -->", "",
           "`seglab MODE key=value ...`; defaults, then a YAML recipe (`cfg=FILE`), then `key=value` "
           "(`seglab.train(key=value)` in Python). Every value is checked when it is parsed, before any data is "
           "read. A key given on the command line that the mode does not use is an error; keys in a recipe may be "
           "unused (recipes are shared by train, val and predict). A model argument that the chosen architecture "
           "does not take is an error, and so is a key set to other than its default for a task that does not read it "
           "(below); a dataset key that the dataset's format does not read prints a warning. "
           "`seglab help KEY` and `seglab help MODE` print the same facts.", ""]
    for mode in MODES:
        out += [f"## {mode}", "", "| key | type | default | allowed | help |", "|---|---|---|---|---|"]
        for k in mode_keys(mode):
            out.append(f"| `{k.name}` | {_cell(k.type_text)} | `{_cell(show(k.default))}` | "
                       f"{_cell(k.allowed_text)} | {_cell(k.help)} |")
        out.append("")
    out += ["## Which keys each dataset format reads", ""]
    for k in KEY_TABLE:
        if k.formats:
            out.append(f"- `{k.name}`: {', '.join(k.formats)}")
    out += ["", "## Which keys each task reads", "",
            "Keys not listed here are read by every task (or, for model arguments, by the architectures that take them).", ""]
    for k in KEY_TABLE:
        if k.tasks:
            out.append(f"- `{k.name}`: {', '.join(k.tasks)}")
    out += ["", "## Model arguments", "",
            "Passed to the architecture when its constructor takes them (`seglab models` lists the architectures): "
            + ", ".join(f"`{name}`" for name in MODEL_ARGUMENTS) + ".", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(reference_markdown(), end="")
