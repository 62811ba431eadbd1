"""Image width and height from the file header, without decoding pixels.

The header reader itself is :func:`detforge.data.imageformats.parse_header` (JPEG, PNG, GIF,
BMP, WebP, TIFF, PNM). JPEG and TIFF EXIF orientation is read and *applied* here:
orientations 5-8 (rotated by 90 degrees) swap width and height, so the reported size is the
size the image is displayed at (what ``PIL.ImageOps.exif_transpose`` gives). Code that decodes
pixels for labels or training must apply the same transpose to agree with these sizes.

:func:`read_image_header` reads one file and raises :class:`DetforgeError`;
:func:`read_sizes` reads many in parallel threads and returns per-file errors instead.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detforge.data.imageformats import Header, HeaderError, parse_header
from detforge.errors import DetforgeError
from detforge.utils.cpu import usable_cores
from detforge.utils.filestat import native_available, read_heads


@dataclass(frozen=True)
class ImageHeader:
    """Size of an image as displayed (EXIF orientation applied), in pixels.

    ``format`` is ``"jpeg"``, ``"png"``, ``"gif"``, ``"bmp"``, ``"webp"`` or ``"tiff"``;
    ``orientation`` the EXIF value 1-8 (1 when absent); ``raw_width``/``raw_height`` the stored
    size before orientation.
    """

    width: int
    height: int
    format: str
    orientation: int = 1

    @property
    def raw_width(self) -> int:
        return self.height if self.orientation >= 5 else self.width

    @property
    def raw_height(self) -> int:
        return self.width if self.orientation >= 5 else self.height


_HEAD_BYTES = 16384  # first read of a header
_UNKNOWN_SIZE = 1 << 62  # a head shorter than the file: its length is not known here


class _NeedFile(Exception):
    """Internal: the head given is not enough; read the file itself."""


def _need_file(n: int) -> bytes:
    raise _NeedFile


def _oriented(hdr: Header) -> ImageHeader:
    w, h, o = hdr.width, hdr.height, hdr.orientation
    return ImageHeader(h, w, hdr.format, o) if o >= 5 else ImageHeader(w, h, hdr.format, o)


def _header_in(head: bytes) -> ImageHeader | None:
    """The header parsed from a file's first ``_HEAD_BYTES`` (all of a shorter file), or
    ``None`` when the parse needs bytes past them (read the file itself)."""
    size = len(head) if len(head) < _HEAD_BYTES else _UNKNOWN_SIZE
    try:
        return _oriented(parse_header(head, size, _need_file))
    except _NeedFile:
        return None


def read_image_header(path: str | os.PathLike[str], head: bytes | None = None) -> ImageHeader:
    """Read the size of one image from its header (EXIF orientation applied). ``head``: the
    file's first bytes when the caller already read them (see :func:`read_sizes`).

    Raises :class:`DetforgeError` (with ``path``) for a missing, empty, truncated or unknown
    file.
    """
    try:
        if head is not None:
            got = _header_in(head)
            if got is not None:
                return got
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            # One read covers most headers: parse it in memory; the file is only read on
            # when that was not enough.
            size = os.fstat(fd).st_size
            first = os.read(fd, _HEAD_BYTES)
            return _oriented(parse_header(first, size, lambda n: os.read(fd, n)))
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise DetforgeError("image not found", path=path) from None
    except HeaderError as exc:
        raise DetforgeError(f"unreadable image header: {exc.detail}", path=path) from None
    except (struct.error, IndexError) as exc:
        raise DetforgeError(f"unreadable image header: {exc}", path=path) from None
    except OSError as exc:
        raise DetforgeError(f"cannot read image: {exc.strerror}", path=path) from None


_Result = tuple[list[int], list[int], list[str | None]]


def _chunk(paths: Sequence[str], heads: Sequence[bytes | None] | None = None) -> _Result:
    ws: list[int] = []
    hs: list[int] = []
    errs: list[str | None] = []
    for i, p in enumerate(paths):
        try:
            hdr = read_image_header(p, heads[i] if heads is not None else None)
            ws.append(hdr.width)
            hs.append(hdr.height)
            errs.append(None)
        except DetforgeError as exc:
            ws.append(0)
            hs.append(0)
            errs.append(exc.message)
    return ws, hs, errs


_NATIVE_CHUNK = 4096  # images whose heads are read (in C) before they are parsed: <= 64 MiB


def default_workers() -> int:
    """Threads for header reads: I/O bound, so a few per core (capped at 32)."""
    return min(32, 4 * usable_cores())


def read_sizes(
    paths: Sequence[str],
    *,
    workers: int | None = None,
    desc: str | None = None,
    file_sizes: Sequence[int] | NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], dict[int, str]]:
    """Sizes of many images: the first bytes of every file are read in the C helper on every
    core (:func:`~detforge.utils.filestat.read_heads`) and parsed here; without the helper,
    in parallel threads (``workers``).

    Returns ``widths (N,)``, ``heights (N,)`` (int64 pixels, oriented; ``0`` where unreadable)
    and ``errors``: index -> message for every file that could not be read. Never raises for a
    bad file. ``desc``: show a progress bar (on a terminal) with this label. ``file_sizes``:
    the files' sizes in bytes from a stat just before, if known (less memory for the reads).
    """
    from detforge.utils.progress import progress

    n = len(paths)
    bar = desc is not None and n > 0

    def tracked(results: Iterable[_Result]) -> list[_Result]:
        if not bar:
            return list(results)
        out = []
        done = progress(range(n), total=n, desc=desc or "", unit="img")
        for r in results:
            out.append(r)
            for _ in range(len(r[0])):
                next(done, None)
        for _ in done:  # close the bar
            pass
        return out

    if native_available():
        # the reads in C on every core, the parse here (a few µs an image), pipelined: the
        # next chunk is read while this one is parsed. A None head (an error, an unusual
        # header) takes the per-file path and its clear message.
        spans = [(i, min(n, i + _NATIVE_CHUNK)) for i in range(0, n, _NATIVE_CHUNK)]

        def heads(k: int) -> list[bytes | None]:
            a, b = spans[k]
            sizes = None if file_sizes is None else file_sizes[a:b]
            return read_heads(paths[a:b], _HEAD_BYTES, sizes=sizes, threads=workers)

        def parsed() -> Iterator[_Result]:
            with ThreadPoolExecutor(max_workers=1) as ahead:
                nxt = ahead.submit(heads, 0) if spans else None
                for k, (a, b) in enumerate(spans):
                    assert nxt is not None
                    got = nxt.result()
                    nxt = ahead.submit(heads, k + 1) if k + 1 < len(spans) else None
                    yield _chunk(paths[a:b], got)

        results = tracked(parsed())
    else:
        workers = default_workers() if workers is None else max(1, workers)
        step = max(64, -(-n // (workers * 4))) if n else 1
        chunks = [paths[i : i + step] for i in range(0, n, step)]
        if workers == 1 or len(chunks) <= 1:
            results = tracked(_chunk(c) for c in chunks)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = tracked(pool.map(_chunk, chunks))
    ws = np.fromiter((w for r in results for w in r[0]), dtype=np.int64, count=n)
    hs = np.fromiter((h for r in results for h in r[1]), dtype=np.int64, count=n)
    errors = {i: e for i, e in enumerate(e for r in results for e in r[2]) if e is not None}
    return ws, hs, errors
