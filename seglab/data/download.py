"""Download an archive (resumable-safe: written to a .part file, then renamed) and unpack it."""

from __future__ import annotations

import http.client
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from seglab.data.io import DataError


def fetch(url: str, dest: Path, timeout: float = 60.0) -> Path:
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    print(f"downloading {url} -> {dest}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
            expected = response.headers.get("Content-Length")
            if expected is not None and out.tell() != int(expected):
                raise OSError(f"connection closed after {out.tell()} of {expected} bytes")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        raise DataError(
            f"could not download {url} ({e}). Without a network, download it by hand and save it as {dest} "
            f"(seglab unpacks it from there)"
        ) from None
    os.replace(part, dest)
    return dest


def extract(archive: Path, into: Path) -> None:
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                target = (into / member).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise DataError(f"{archive}: member {member} would unpack outside {into}")
            z.extractall(into)
        return
    try:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"{archive}: cannot unpack ({e})") from None


def fetch_and_extract(url: str, root: Path) -> None:
    root = Path(root)
    archive = fetch(url, root / "downloads" / url.rstrip("/").rsplit("/", 1)[-1])
    extract(archive, root)
