"""One function per command-line mode: `seglab MODE key=value ...` calls MODES[MODE](cfg)."""

from seglab.modes.benchmark import benchmark
from seglab.modes.export import export
from seglab.modes.models import models
from seglab.modes.predict import predict
from seglab.modes.train import train
from seglab.modes.val import val
from seglab.modes.verify import verify

MODES = {"train": train, "val": val, "predict": predict, "models": models,
         "export": export, "benchmark": benchmark, "verify": verify}
