"""`seglab predict`: class-index PNG, colour PNG and overlay per image (and optionally probabilities),
at each image's own size; videos frame by frame. A file that cannot be used is reported and skipped.

Images in stretch mode go through the model in batches of `batch`; tiled images are predicted one at
a time, their tiles in batches (see seglab/inference/predictor.py). `seglab val` scores exactly these
labels (seglab/inference/evaluate.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from seglab.config import Config
from seglab.data.io import DataError
from seglab.engine.device import Runtime
from seglab.models.source import resolve_model
from seglab.inference.malloc import reuse_freed_memory
from seglab.inference.outputs import NAMES, flush_probs, probs_file, write_masks
from seglab.inference.predictor import InferenceOptions, Job, Predictor
from seglab.inference.sources import expand_source
from seglab.inference.video import predict_video


class _Run:
    """Pending stretch-mode jobs, the output folder and the error list of one `predict` call."""

    def __init__(self, predictor: Predictor, out: Path, save_probs: bool):
        self.predictor, self.out, self.save_probs = predictor, out, save_probs
        self.pending: list[Job] = []
        self.done = 0
        self.failed: list[str] = []

    def fail(self, message: str) -> None:
        self.failed.append(message)
        print(f"skipped: {message}", file=sys.stderr)

    def add(self, path: Path) -> None:
        try:
            job = Job.from_file(path)
        except DataError as e:
            return self.fail(str(e) if str(e).startswith(str(path)) else f"{path}: {e}")
        height, width = job.image.shape[:2]
        if self.save_probs:
            job.probs_out = probs_file(self.out, path.stem, self.predictor.num_classes, height, width)
        if self.predictor.mode_for(height, width) == "tile":
            self._finish([job])
        else:
            self.pending.append(job)
            if len(self.pending) >= self.predictor.options.batch:
                self.flush()

    def flush(self) -> None:
        jobs, self.pending = self.pending, []
        if jobs:
            self._finish(jobs)

    def _finish(self, jobs: list[Job]) -> None:
        try:
            results = self.predictor.run(jobs)
        except DataError as e:  # find the bad file(s); the rest still gets predicted
            if len(jobs) > 1:
                for job in jobs:
                    self._finish([job])
                return
            if jobs[0].probs_out is not None:
                Path(jobs[0].probs_out.filename).unlink(missing_ok=True)
            return self.fail(f"{jobs[0].source}: {e}")
        for job, labels in zip(jobs, results):
            write_masks(self.out, job.source.stem, job.image, labels, self.predictor.classes)
            flush_probs(job.probs_out)
            self.done += 1


def predict(cfg: Config) -> Path:
    reuse_freed_memory()  # batches of activations reuse freed memory instead of faulting in fresh pages
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    predictor = Predictor(cfg.model, runtime, InferenceOptions.from_config(cfg), compile=cfg.compile,
                          threads=cfg.threads)
    sources = expand_source(cfg.source)
    out = Path(cfg.out) if cfg.out else resolve_model(cfg.model).path.parent / "predict"
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(predictor, out, cfg.save_probs)
    start = time.perf_counter()
    for message in sources.skipped:
        run.fail(message)
    for path in sources.images:
        run.add(path)
    run.flush()
    frames = 0
    for path in sources.videos:
        try:
            frames += predict_video(predictor, path, out, cfg.save_frames, cfg.save_probs, cfg.smooth)
            run.done += 1
        except DataError as e:
            run.fail(str(e) if str(e).startswith(str(path)) else f"{path}: {e}")
    if cfg.verbose:
        what = f"images and videos ({frames} frames)" if sources.videos else "images"
        print(f"{predictor.describe()}\npredicted {run.done} of {len(sources)} {what} in "
              f"{time.perf_counter() - start:.1f} s -> {out.resolve()}\n  ({NAMES}"
              f"{', <name>_probs.npy float16 [C,H,W]' if cfg.save_probs else ''}"
              f"{', <name>_overlay.mp4 per video' if sources.videos else ''})")
    if run.failed:
        (out / "errors.txt").write_text("\n".join(run.failed) + "\n")
        if cfg.verbose:
            print(f"{len(run.failed)} inputs skipped, listed in {out / 'errors.txt'}")
    if not run.done:  # nothing to show for the call: an error (the CLI exits 1), errors.txt says why
        raise DataError(f"nothing could be predicted from source={cfg.source!r}"
                        + (f": {len(run.failed)} input(s) failed, listed in {out / 'errors.txt'}" if run.failed else ""))
    return out
