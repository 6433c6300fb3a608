"""`seglab verify` for instance datasets: every image and instance of every split, problems named by
file and annotation (seglab/data/instance/verify.py has the checks). Exit code 1 on problems."""

from __future__ import annotations

from seglab.config import Config
from seglab.data.instance import INSTANCE_FORMATS, instance_format, verify_split
from seglab.tasks.verifying import verify_splits


def verify(cfg: Config) -> int:
    return verify_splits(cfg, INSTANCE_FORMATS, instance_format, verify_split, "instance", split_header=True)
