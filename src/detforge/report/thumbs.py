"""Thumbnails and viewing copies of the gallery's images, made once.

Each image gets ``view/<key>.jpg`` (long side at most :data:`VIEW_SIDE`) and, when that is
larger than :data:`THUMB_SIDE`, ``thumbs/<key>.jpg`` (long side :data:`THUMB_SIDE`; a smaller
image is its own thumbnail) inside the report folder; ``key`` hashes the image's
absolute path, size and modification time, so rebuilding a report into the same folder reuses
every file whose source did not change. Both keep the EXIF-rotated orientation that the box
coordinates use. Decoding runs on a thread pool (Pillow releases the GIL while decoding).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

THUMB_SIDE = 320
VIEW_SIDE = 1280
QUALITY = 85


@dataclass(frozen=True)
class Picture:
    """Paths relative to the report folder (``""`` when the image could not be read)."""

    thumb: str
    view: str
    error: str | None = None


def image_key(path: str) -> str:
    """A file-name-safe key of ``path``'s absolute path, size and mtime (16 hex digits)."""
    ap = os.path.abspath(path)
    try:
        st = os.stat(ap)
        tag = f"{ap}\0{st.st_size}\0{st.st_mtime_ns}"
    except OSError:
        tag = ap
    return hashlib.sha1(tag.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _make(path: str, out: Path, key: str) -> Picture:
    from PIL import Image

    from detforge.data.images import load_image
    from detforge.data.imagesize import read_image_header
    from detforge.errors import DetforgeError
    from detforge.utils.io import atomic_open

    thumb, view = f"thumbs/{key}.jpg", f"view/{key}.jpg"
    if (out / view).is_file():  # made by an earlier build (the thumbnail is written first)
        return Picture(thumb if (out / thumb).is_file() else view, view)
    try:
        head = read_image_header(path)  # shrink big images while decoding, never enlarge
        fit = VIEW_SIDE if max(head.width, head.height) > VIEW_SIDE else None
        big = Image.fromarray(load_image(path, fit=fit).image, "RGB")
    except DetforgeError as exc:
        return Picture("", "", str(exc))
    big.thumbnail((VIEW_SIDE, VIEW_SIDE), Image.Resampling.LANCZOS)
    if max(big.size) <= THUMB_SIDE:  # small enough to be its own thumbnail
        with atomic_open(out / view, "wb") as f:
            big.save(f, format="JPEG", quality=QUALITY)
        return Picture(view, view)
    small = big.copy()
    small.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    for rel, pic in ((thumb, small), (view, big)):
        with atomic_open(out / rel, "wb") as f:
            pic.save(f, format="JPEG", quality=QUALITY)
    return Picture(thumb, view)


def make_pictures(paths: Sequence[str], out: Path, *, workers: int | None = None) -> list[Picture]:
    """Thumbnail and viewing copy of every image in ``paths`` under ``out`` (see module doc)."""
    from detforge.utils.cpu import usable_cores
    from detforge.utils.progress import progress

    (out / "thumbs").mkdir(parents=True, exist_ok=True)
    (out / "view").mkdir(parents=True, exist_ok=True)
    keys = [image_key(p) for p in paths]
    n = workers or min(8, usable_cores())
    with ThreadPoolExecutor(max_workers=max(1, n)) as pool:
        jobs = pool.map(lambda pk: _make(pk[0], out, pk[1]), zip(paths, keys, strict=True))
        return list(progress(jobs, total=len(paths), desc="thumbnails", unit="img"))
