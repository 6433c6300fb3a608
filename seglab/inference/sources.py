"""What `predict` reads: a file, a folder or a glob pattern, split into images and videos."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from seglab.data.io import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")


@dataclass
class Sources:
    images: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: reason" for files of an unsupported format

    def __len__(self) -> int:
        return len(self.images) + len(self.videos) + len(self.skipped)


def is_video(path: Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def expand_source(source: str) -> Sources:
    """A file, a folder (its files, sorted; hidden files ignored) or a glob pattern.

    A file named directly is always tried as an image unless its suffix says video, so an image
    with a wrong or missing suffix still works (and an unreadable one gets a clear error). In folders
    and globs, files whose suffix is neither an image nor a video format are listed as skipped."""
    if not source:
        raise ValueError("predict needs source=FILE|FOLDER|GLOB (images or videos)")
    path = Path(source).expanduser()
    if path.is_file():
        return Sources(videos=[path]) if is_video(path) else Sources(images=[path])
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    found = Sources()
    for file in files:
        suffix = file.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            found.images.append(file)
        elif suffix in VIDEO_SUFFIXES:
            found.videos.append(file)
        else:
            found.skipped.append(f"{file}: unsupported format '{suffix or '(no suffix)'}' (images: "
                                 f"{' '.join(IMAGE_SUFFIXES)}; videos: {' '.join(VIDEO_SUFFIXES)})")
    if not found.images and not found.videos:
        raise FileNotFoundError(f"source={source}: no image or video files found"
                                + (f" ({len(found.skipped)} files of other formats)" if found.skipped else ""))
    return found
