"""Caching training images decoded (RAM or disk).

Images are decoded by :func:`detforge.data.images.load_image` with ``fit=imgsz`` (long side
``imgsz``, EXIF orientation applied, any mode made RGB, bounded size), the decoder inference
uses too. The result is ``(h, w, 3)`` uint8 RGB.

:class:`ImageCache` holds all decoded images of a dataset in one flat uint8 buffer (one object,
so worker processes forked after filling it share its pages instead of copying them).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from detforge.data.images import load_image
from detforge.errors import DetforgeError
from detforge.utils.cpu import usable_cores
from detforge.utils.progress import progress

ImageArray = NDArray[np.uint8]
CacheMode = Literal["auto", "ram", "disk", "none"]


def available_memory() -> int:
    """Bytes of RAM the OS says are available (``MemAvailable``), or 0 when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def cache_bytes(heights: NDArray[np.int64], widths: NDArray[np.int64], imgsz: int) -> int:
    """Bytes needed to hold every image decoded at the training size (long side ``imgsz``)."""
    r = imgsz / np.maximum(np.maximum(heights, widths), 1)
    return int(np.sum(np.round(heights * r) * np.round(widths * r) * 3))


def choose_cache(mode: str, need: int, *, copies: int = 1) -> Literal["ram", "disk", "none"]:
    """Resolve ``mode`` given ``need`` bytes per copy and ``copies`` processes holding one.

    ``auto`` picks RAM when all copies take at most half the available memory, else none.
    ``ram`` that cannot fit raises a :class:`DetforgeError` instead of swapping the machine.
    """
    if mode not in ("auto", "ram", "disk", "none"):
        raise DetforgeError(f"cache must be auto, ram, disk or none, not {mode!r}")
    avail = available_memory()
    fits = avail == 0 or need * copies <= avail // 2
    if mode == "auto":
        return "ram" if fits else "none"
    if mode == "ram" and not fits:
        gib = 1 << 30
        raise DetforgeError(
            f"caching the images in RAM needs {need * copies / gib:.1f} GiB but only "
            f"{avail / gib:.1f} GiB are available; use --cache disk or none, or a smaller --imgsz"
        )
    return mode  # type: ignore[return-value]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/detforge/images`` (``~/.cache/detforge/images``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "detforge" / "images"


def _disk_key(path: str, imgsz: int, exif_transpose: bool) -> str:
    st = os.stat(path)
    text = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{imgsz}|{int(exif_transpose)}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class ImageCache:
    """Decoded images of a dataset at one training size, in RAM or as ``.npy`` files on disk.

    ``get(i)`` returns ``(image (h, w, 3) uint8, (h0, w0))`` like :func:`load_image`; images
    are decoded once, by :meth:`fill` (threads; Pillow releases the GIL while decoding).
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        imgsz: int,
        mode: Literal["ram", "disk"],
        exif_transpose: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.imgsz = imgsz
        self.mode = mode
        self.exif_transpose = exif_transpose
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        n = len(self.paths)
        self.shapes = np.zeros((n, 2), dtype=np.int64)  # decoded (h, w)
        self.orig = np.zeros((n, 2), dtype=np.int64)  # full-resolution (h0, w0)
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        self.buffer: ImageArray = np.zeros(0, dtype=np.uint8)
        self.files: list[str] = []
        self.decoded = 0
        """How many images :meth:`fill` decoded (the rest came from the disk cache)."""
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop("_lock")  # locks do not pickle (spawned workers get a fresh one)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _load(self, i: int) -> tuple[ImageArray, tuple[int, int]]:
        with self._lock:
            self.decoded += 1
        return load_image(self.paths[i], fit=self.imgsz, exif_transpose=self.exif_transpose)

    def _disk(self, i: int) -> tuple[str, tuple[int, int, int, int]]:
        from detforge.utils.io import atomic_open

        p = self.paths[i]
        try:
            f = str(self.cache_dir / f"{_disk_key(p, self.imgsz, self.exif_transpose)}.npy")
        except OSError as exc:
            raise DetforgeError(f"cannot read the image ({exc})", path=p) from exc
        meta = f[:-4] + ".json"
        if os.path.exists(f) and os.path.exists(meta):
            with open(meta, encoding="ascii") as fm:
                h0, w0 = (int(v) for v in fm.read().split())
            arr = np.load(f, mmap_mode="r")
            return f, (int(arr.shape[0]), int(arr.shape[1]), h0, w0)
        img, (h0, w0) = self._load(i)
        with atomic_open(f, "wb") as fo:
            np.save(fo, img)
        with atomic_open(meta, "w") as fm:
            fm.write(f"{h0} {w0}")
        return f, (img.shape[0], img.shape[1], h0, w0)

    def fill(self, *, threads: int | None = None, show_progress: bool | None = None) -> None:
        """Decode every image once (RAM) or make sure its ``.npy`` exists (disk)."""
        n = len(self.paths)
        threads = threads or min(8, usable_cores())
        desc = f"caching images ({self.mode})"
        with ThreadPoolExecutor(max_workers=threads) as pool:
            if self.mode == "disk":
                self.files = [""] * n
                it = pool.map(self._disk, range(n))
                for i, (f, (h, w, h0, w0)) in enumerate(
                    progress(it, total=n, desc=desc, unit="img", enabled=show_progress)
                ):
                    self.files[i] = f
                    self.shapes[i], self.orig[i] = (h, w), (h0, w0)
                return
            chunks: list[ImageArray] = []
            for i, (img, hw0) in enumerate(
                progress(
                    pool.map(self._load, range(n)),
                    total=n,
                    desc=desc,
                    unit="img",
                    enabled=show_progress,
                )
            ):
                self.shapes[i], self.orig[i] = img.shape[:2], hw0
                chunks.append(img.reshape(-1))
        self.offsets[1:] = np.cumsum([c.size for c in chunks])
        self.buffer = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint8)
        self.buffer.setflags(write=False)  # augmentations must copy, never write in place

    def get(self, i: int) -> tuple[ImageArray, tuple[int, int]]:
        h, w = (int(v) for v in self.shapes[i])
        hw0 = (int(self.orig[i, 0]), int(self.orig[i, 1]))
        if self.mode == "disk":
            return np.load(self.files[i]), hw0
        return self.buffer[self.offsets[i] : self.offsets[i + 1]].reshape(h, w, 3), hw0
