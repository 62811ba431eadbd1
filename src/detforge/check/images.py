"""Image file integrity from the bytes on disk, without decoding pixels (unless ``deep``).

:func:`inspect_image` reads the head and the tail of a file and tells apart: an empty file, a
file that is not an image at all (all zero bytes, text, an HTML error page from a failed
download; :func:`~detforge.data.imageformats.not_image_detail` says which), an image in a
format detforge cannot decode (HEIC, AVIF, JPEG 2000, PSD, SVG), a truncated file (a JPEG
without its ``FFD9`` end marker, a PNG without ``IEND``, a GIF without its trailer, a BMP or
WebP shorter than its header says), and otherwise returns the stored width and height in pixels
and the EXIF orientation (1 = none). ``deep=True`` also decodes every pixel with Pillow.

:func:`inspect_images` runs it over many files in a thread pool (the work is file I/O).
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from detforge.check.findings import Finding, finding
from detforge.data.imageformats import (
    EXTENSIONS,
    HEAD,
    TAIL,
    ImageInfo,
    bad_info,
    inspect_header,
)
from detforge.formats.darknet.files import missing_hint
from detforge.utils.cpu import usable_cores
from detforge.utils.progress import progress


def _decode(src: str | bytes) -> str:
    """Decode every pixel with Pillow; ``""`` when fine, else the error text."""
    import io

    from detforge.data.images import open_image

    try:
        with open_image(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
            im.load()
    except Exception as exc:  # Pillow raises many types for bad data
        return f"{type(exc).__name__}: {exc}"
    return ""


def _digest(head: bytes, size: int) -> str:
    d = hashlib.blake2b(head, digest_size=16).hexdigest()
    return d if size <= len(head) else "head:" + d


def inspect_bytes(data: bytes, *, deep: bool = False) -> ImageInfo:
    """:func:`inspect_image` for an image held in memory (e.g. a TFRecord's image/encoded)."""
    try:
        info = inspect_header(data, data[-TAIL:], len(data), lambda n: b"")
    except struct.error as exc:
        return bad_info("image-truncated", f"header cut off ({exc})")
    if deep and not info.problem:
        err = _decode(data)
        if err:
            return info._replace(problem="image-decode-failed", detail=err)
    return info


def inspect_image(path: str, *, deep: bool = False) -> ImageInfo:
    """Check one image file; never raises for bad data (problems go in ``problem``).

    Reads the first ``HEAD`` bytes and the last ``TAIL`` bytes with two system calls.
    """
    try:  # O_NONBLOCK: a FIFO or device named like an image must not hang the check
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return bad_info("image-missing", "no such file")
    except OSError as exc:
        return bad_info("image-unreadable", exc.strerror or str(exc))
    try:
        st = os.fstat(fd)
        size = st.st_size
        if stat.S_ISDIR(st.st_mode):
            return bad_info("image-not-image", "this path is a folder")
        if not stat.S_ISREG(st.st_mode):
            return bad_info("image-not-image", "this path is not a regular file (a pipe or device)")
        head = os.read(fd, HEAD)
        tail = head[-TAIL:] if size <= len(head) else os.pread(fd, TAIL, max(size - TAIL, 0))
        pos = [len(head)]

        def more(n: int) -> bytes:
            got = os.pread(fd, n, pos[0])
            pos[0] += len(got)
            return got

        hdr = inspect_header(head, tail, size, more)
        info = ImageInfo(*hdr[:6], _digest(head, size), size, st.st_mtime_ns)
    except IsADirectoryError:
        return bad_info("image-not-image", "this path is a folder")
    except struct.error as exc:
        return bad_info("image-truncated", f"header cut off ({exc})")
    except OSError as exc:
        return bad_info("image-unreadable", exc.strerror or str(exc))
    finally:
        os.close(fd)
    if deep and not info.problem:
        err = _decode(path)
        if err:
            return info._replace(problem="image-decode-failed", detail=err)
    return info


SLOW_READ_S = 300e-6
"""Seconds per file above which reads are taken to wait on storage (not on the CPU)."""


def inspect_images(
    paths: Sequence[str], *, deep: bool = False, workers: int | None = None
) -> list[ImageInfo]:
    """:func:`inspect_image` over ``paths``, in order, with a progress bar.

    Files in the page cache are checked fastest in this thread: the work is then Python
    (GIL-bound) and threads only trade the interpreter lock back and forth, which is slow on
    a busy machine. So the first files are checked here and timed; if they take longer than
    :data:`SLOW_READ_S` each (a cold disk or a network share) -- or with ``deep``, where
    Pillow decodes without the lock -- the rest goes to ``workers`` threads (default up to
    8) that overlap the waiting. ``workers=1`` never uses threads.
    """
    n = len(paths)
    if n == 0:
        return []
    probe = min(n, 64)
    t0 = time.perf_counter()
    head = [inspect_image(p, deep=deep) for p in paths[:probe]]
    slow = (time.perf_counter() - t0) / probe > SLOW_READ_S
    workers = workers or min(8, 2 * usable_cores())
    rest = paths[probe:]
    use_threads = workers > 1 and len(rest) > 64 and (slow or deep)

    def run(group: Sequence[str]) -> list[ImageInfo]:
        return [inspect_image(p, deep=deep) for p in group]

    def results() -> Iterator[ImageInfo]:
        yield from head
        if not use_threads:
            yield from (inspect_image(p, deep=deep) for p in rest)
            return
        chunk = max(1, min(256, len(rest) // (workers * 4)))
        groups = [rest[i : i + chunk] for i in range(0, len(rest), chunk)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for res in pool.map(run, groups):
                yield from res

    desc = "decoding images" if deep else "checking images"
    return list(progress(results(), total=n, desc=desc, unit="img"))


TINY = 32
"""``image-tiny`` fires below this many pixels in width or height (one stride-32 cell)."""

_ADVICE = {
    "image-empty": "a zero-byte file is left by an interrupted copy or conversion; re-copy it",
    "image-truncated": (
        "the file was cut off (an interrupted copy or conversion); decoders show a grey band "
        "or fail mid-training -- re-copy or re-export it"
    ),
    "image-not-image": "replace it with the real image or remove it from the dataset",
    "image-unsupported": "convert it to JPEG or PNG",
    "image-decode-failed": "the pixel data is corrupt; re-copy or re-export it",
    "image-unreadable": "check the file's permissions",
    "image-missing": "fix the path or remove the line",
}


def image_findings(
    paths: Sequence[str],
    infos: Sequence[ImageInfo],
    *,
    origins: Sequence[tuple[str, int | None]] | None = None,
    tiny: int = TINY,
) -> list[Finding]:
    """Findings for inspected images. ``origins[i]`` is the ``(list file, line)`` that named
    image ``i``: a missing image is reported there, everything else at the image itself.
    ``image-tiny`` fires below ``tiny`` pixels in width or height (``0``: never)."""
    out: list[Finding] = []
    for i, (p, info) in enumerate(zip(paths, infos, strict=True)):
        if info.problem:
            if info.problem == "image-missing" and origins is not None:
                where, line = origins[i]
                msg = f"image {p} does not exist{missing_hint(p)}; {_ADVICE['image-missing']}"
                out.append(
                    finding("image-missing", msg + " (--fix drops it)", path=where, line=line)
                )
                continue
            advice = _ADVICE.get(info.problem, "")
            msg = f"{info.detail}; {advice} (--fix drops the image from the lists)"
            out.append(finding(info.problem, msg, path=p))
            continue
        if info.width < tiny or info.height < tiny:
            out.append(
                finding(
                    "image-tiny",
                    f"image is {info.width} x {info.height} px, smaller than {tiny} px (one "
                    "cell of the coarsest detection level is 32); objects in it are barely "
                    "learnable -- upscale the images, or set --tiny-px for such a dataset",
                    path=p,
                )
            )
        if info.orientation not in (0, 1):
            rot = {3: "180 degrees", 6: "90 degrees clockwise", 8: "90 degrees counter-clockwise"}
            how = rot.get(info.orientation, "mirrored/rotated")
            out.append(
                finding(
                    "image-exif-rotated",
                    f"EXIF orientation {info.orientation} ({how}): photo viewers, PIL-based "
                    "tools and detforge show it rotated, Darknet and OpenCV-based tools use the "
                    "stored pixels, so labels drawn in one view are wrong in the other -- "
                    "re-save the image with the rotation applied and check its labels",
                    path=p,
                )
            )
        ext = os.path.splitext(p)[1].lower()
        if ext and info.format in EXTENSIONS and ext not in EXTENSIONS[info.format]:
            out.append(
                finding(
                    "image-extension",
                    f"the file is a {info.format.upper()} but is named {ext}; tools that trust "
                    "the extension may reject it -- rename it",
                    path=p,
                )
            )
    return out


def oriented_size(info: ImageInfo) -> tuple[int, int]:
    """``(width, height)`` as displayed: EXIF orientations 5-8 swap the stored sides."""
    if info.orientation >= 5:
        return info.height, info.width
    return info.width, info.height


__all__ = [
    "ImageInfo",
    "image_findings",
    "inspect_bytes",
    "inspect_image",
    "inspect_images",
    "oriented_size",
]
