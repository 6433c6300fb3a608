"""An 8000 x 8000 image predicted by tiling, measured in a fresh process (slow: ~1 min on 2 cores).

The bound: beyond the input image and the outputs (labels uint8 H x W), memory grows by the sliding
accumulator ((C + 1) x tile x W float32), one finished band and one batch of tiles through the model,
never by full-image scores (C x H x W float32 = 768 MB here).
"""
import json
import subprocess
import sys

import pytest

from conftest import REPO
from test_inference_common import tiny_checkpoint

SCRIPT = r"""
import json, resource, sys
import numpy as np
from seglab.inference.predictor import InferenceOptions, Job, Predictor
side = 8000
predictor = Predictor(sys.argv[1], options=InferenceOptions(mode="auto", tile=512, batch=2))
image = np.full((side, side, 3), 90, np.uint8)
image[::5] = 200
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
before = peak()
job = Job(image)
labels = predictor.run([job])[0]
print(json.dumps({"mode": predictor.mode_for(side, side), "growth": peak() - before, "labels": labels.nbytes,
                  "shape": list(labels.shape), "tiles": job.stats.tiles, "buffer": job.stats.buffer_bytes}))
"""


@pytest.mark.slow
def test_8000_square_image_in_bounded_memory():
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_checkpoint())], capture_output=True, text=True,
                          cwd=REPO, timeout=1200)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mode"] == "tile" and result["shape"] == [8000, 8000] and result["tiles"] == 21 * 21
    assert result["buffer"] == 4 * 512 * 8000 * 4  # 65.5 MB
    full_scores = 3 * 8000 * 8000 * 4  # 768 MB
    assert result["growth"] < result["labels"] + 3 * result["buffer"] + 100e6 < full_scores / 2, result
