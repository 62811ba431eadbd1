"""Image width and height from the file header, without decoding pixels.

Supported: JPEG (baseline, progressive, lossless SOF markers), PNG, GIF, BMP, WEBP (lossy,
lossless, extended) and TIFF. JPEG and TIFF EXIF orientation is read and *applied*:
orientations 5-8 (rotated by 90 degrees) swap width and height, so the reported size is the
size the image is displayed at (what ``PIL.ImageOps.exif_transpose`` gives). Code that decodes
pixels for labels or training must apply the same transpose to agree with these sizes.

:func:`read_image_header` reads one file and raises :class:`DetforgeError`;
:func:`read_sizes` reads many in parallel threads and returns per-file errors instead.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError
from detforge.utils.cpu import usable_cores
from detforge.utils.filestat import native_available, read_heads

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".webp", ".tif", ".tiff"}
)
"""Lower-case suffixes detforge treats as images when scanning folders."""

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


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


class _Bad(Exception):
    """Internal: header is not what it claims (turned into a DetforgeError)."""


def _read(f: BinaryIO, n: int) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise _Bad("file ends inside the header (truncated?)")
    return b


def _tiff_orientation_and_size(buf: bytes) -> tuple[int, int, int]:
    """``(orientation, width, height)`` from a TIFF structure (EXIF block or TIFF file);
    width/height are 0 when absent. Reads IFD0 only."""
    if len(buf) < 8 or buf[:2] not in (b"II", b"MM"):
        raise _Bad("bad TIFF/EXIF byte order")
    end = "<" if buf[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(end + "I", buf, 4)
    if ifd + 2 > len(buf):
        raise _Bad("EXIF directory outside the block")
    (count,) = struct.unpack_from(end + "H", buf, ifd)
    orient, width, height = 1, 0, 0
    for i in range(count):
        off = ifd + 2 + 12 * i
        if off + 12 > len(buf):
            break
        tag, typ = struct.unpack_from(end + "HH", buf, off)
        if typ == 3:  # SHORT
            (val,) = struct.unpack_from(end + "H", buf, off + 8)
        elif typ == 4:  # LONG
            (val,) = struct.unpack_from(end + "I", buf, off + 8)
        else:
            continue
        if tag == 274:
            orient = val if 1 <= val <= 8 else 1
        elif tag == 256:
            width = val
        elif tag == 257:
            height = val
    return orient, width, height


def _jpeg(f: BinaryIO) -> tuple[int, int, int]:
    orient = 1
    size: tuple[int, int] | None = None
    while True:
        b = f.read(1)
        if not b:
            raise _Bad("file ends before the JPEG frame header (truncated?)")
        if b != b"\xff":
            continue  # tolerate garbage between segments, like decoders do
        m = _read(f, 1)[0]
        while m == 0xFF:
            m = _read(f, 1)[0]
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            continue
        if m == 0xD9:
            break
        (length,) = struct.unpack(">H", _read(f, 2))
        if length < 2:
            raise _Bad("corrupt JPEG segment length")
        if m in _SOF:
            seg = _read(f, length - 2)
            h, w = struct.unpack_from(">HH", seg, 1)
            size = (w, h)
            break
        if m == 0xE1 and orient == 1:
            seg = _read(f, length - 2)
            if seg.startswith(b"Exif\x00\x00"):
                try:
                    orient = _tiff_orientation_and_size(seg[6:])[0]
                except (_Bad, struct.error):
                    orient = 1  # a broken EXIF block does not make the image unreadable
        else:
            f.seek(length - 2, os.SEEK_CUR)
        if m == 0xDA:
            break
    if size is None:
        raise _Bad("no JPEG frame header (SOF) found")
    return size[0], size[1], orient


def _webp(head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise _Bad("bad VP8 start code")
        w, h = struct.unpack_from("<HH", head, 26)
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if head[20] != 0x2F:
            raise _Bad("bad VP8L signature")
        (bits,) = struct.unpack_from("<I", head, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    raise _Bad(f"unknown WEBP chunk {chunk!r}")


def _jpeg_in_memory(buf: bytes) -> tuple[int, int, int] | None:
    """:func:`_jpeg` over ``buf`` (the file's first bytes) with index arithmetic instead of
    reads; ``None`` wherever the walk would need bytes past ``buf`` (the caller then runs
    :func:`_jpeg`, which also gives the same error for a truncated file). Same result and the
    same errors as :func:`_jpeg` wherever it returns."""
    n = len(buf)
    i = 2
    orient = 1
    size: tuple[int, int] | None = None
    while True:
        i = buf.find(b"\xff", i)
        if i < 0:
            return None
        i += 1
        while i < n and buf[i] == 0xFF:
            i += 1
        if i >= n:
            return None
        m = buf[i]
        i += 1
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            continue
        if m == 0xD9:
            break
        if i + 2 > n:
            return None
        length = (buf[i] << 8) | buf[i + 1]
        i += 2
        if length < 2:
            raise _Bad("corrupt JPEG segment length")
        end = i + length - 2
        if m in _SOF:
            if end > n:
                return None
            h, w = struct.unpack_from(">HH", buf[i:end], 1)
            size = (w, h)
            break
        if m == 0xE1 and orient == 1:
            if end > n:
                return None
            if buf.startswith(b"Exif\x00\x00", i, end):
                try:
                    orient = _tiff_orientation_and_size(buf[i + 6 : end])[0]
                except (_Bad, struct.error):
                    orient = 1
        i = end
        if m == 0xDA:
            break
    if size is None:
        raise _Bad("no JPEG frame header (SOF) found")
    return size[0], size[1], orient


def _header(f: BinaryIO, buf: bytes | None = None) -> ImageHeader:
    """The header of the file ``f`` (at offset 0); ``buf``, when given, is all of ``f``'s
    bytes (or its first bytes), for an in-memory JPEG walk."""
    head = f.read(32)
    if head[:3] == b"\xff\xd8\xff":
        got = _jpeg_in_memory(buf) if buf is not None else None
        if got is None:
            f.seek(2)
            got = _jpeg(f)
        w, h, o = got
        fmt = "jpeg"
    elif head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        w, h = struct.unpack_from(">II", head, 16)
        o, fmt = 1, "png"
    elif head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        w, h = struct.unpack_from("<HH", head, 6)
        o, fmt = 1, "gif"
    elif head[:2] == b"BM" and len(head) >= 26:
        (dib,) = struct.unpack_from("<I", head, 14)
        if dib == 12:
            w, h = struct.unpack_from("<HH", head, 18)
        else:
            w, h = struct.unpack_from("<ii", head, 18)
        w, h, o, fmt = abs(w), abs(h), 1, "bmp"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        w, h = _webp(head)
        o, fmt = 1, "webp"
    elif head[:4] in (b"II*\x00", b"MM\x00*"):
        f.seek(0)
        buf = f.read(1 << 16)
        o, w, h = _tiff_orientation_and_size(buf)
        fmt = "tiff"
    elif not head:
        raise _Bad("file is empty")
    else:
        raise _Bad("not a JPEG, PNG, GIF, BMP, WEBP or TIFF image")
    if w <= 0 or h <= 0:
        raise _Bad(f"header gives an impossible size {w}x{h}")
    if o >= 5:
        w, h = h, w
    return ImageHeader(int(w), int(h), fmt, int(o))


def _header_in(head: bytes) -> ImageHeader | None:
    """The header parsed from a file's first ``_HEAD_BYTES`` (all of a shorter file), or
    ``None`` when those bytes are not enough (read the file itself). A parse of a short
    buffer either fails or saw exactly the file's bytes, so only a full buffer can fall short.
    Raises ``_Bad`` (and friends) for a file that is too short to be an image."""
    if head[:4] in (b"II*\x00", b"MM\x00*") and len(head) >= _HEAD_BYTES:
        return None  # TIFF reads 64 KiB at once: needs the file
    try:
        return _header(io.BytesIO(head), head)
    except (_Bad, struct.error, IndexError):
        if len(head) < _HEAD_BYTES:  # that was the whole file
            raise
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
            # One read covers most headers: parse it in memory (no buffered file object);
            # the file is only read on when that was not enough.
            if head is None:
                got = _header_in(os.read(fd, _HEAD_BYTES))
                if got is not None:
                    return got
            os.lseek(fd, 0, os.SEEK_SET)
            with open(fd, "rb", closefd=False) as f:
                return _header(f)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise DetforgeError("image not found", path=path) from None
    except (_Bad, struct.error, IndexError) as exc:
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
