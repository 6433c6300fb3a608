"""seglab: image segmentation on PyTorch.

Python use mirrors the command line: `seglab.train(data="...", width=32, time="10m")`,
`seglab.val(model="runs/train/best.pt", split="test")`, `seglab.predict(model=..., source=...)`.
"""

__version__ = "0.1.0"


def _run(mode: str, overrides: dict):
    from seglab.config import make_config
    from seglab.modes import MODES

    return MODES[mode](make_config(overrides, mode=mode))


def train(**overrides):
    """Train; returns the run folder (pathlib.Path). Keyword arguments are the config keys."""
    return _run("train", overrides)


def val(**overrides):
    """Score a checkpoint (model=...) on a split; returns the metrics dict."""
    return _run("val", overrides)


def predict(**overrides):
    """Predict masks for source=FILE|FOLDER|GLOB; returns the output folder."""
    return _run("predict", overrides)
