"""Image formats from their bytes: magic numbers, sizes, EXIF orientation, end markers.

:func:`inspect_header` identifies a file from its first bytes and checks its last bytes: a
JPEG must end with its ``FFD9`` marker (searched after the start-of-scan, so an embedded EXIF
thumbnail cannot fake it), a PNG with ``IEND``, a GIF with ``;``; BMP and WebP must be as long
as their headers say. Sizes are the stored width and height in pixels; ``orientation`` is the
EXIF value (1 = none).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

HEAD = 1 << 16
TAIL = 1024
SUPPORTED = ("jpeg", "png", "bmp", "gif", "webp", "tiff", "pnm")
EXTENSIONS = {
    "jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "png": (".png",),
    "bmp": (".bmp", ".dib"),
    "gif": (".gif",),
    "webp": (".webp",),
    "tiff": (".tif", ".tiff"),
    "pnm": (".pbm", ".pgm", ".ppm", ".pnm"),
}
IMAGE_EXTENSIONS = tuple(e for exts in EXTENSIONS.values() for e in exts)


class ImageInfo(NamedTuple):
    """What :func:`inspect_image` found. ``problem`` is a finding code or ``""`` when fine."""

    width: int
    height: int
    format: str
    orientation: int
    problem: str
    detail: str
    digest: str = ""
    """BLAKE2b-128 of the whole file when it is at most ``HEAD`` bytes, else ``head:`` + the
    digest of its first ``HEAD`` bytes (enough to tell most different files apart)."""
    size: int = -1
    """File size in bytes from the ``fstat`` of the read (``-1`` when not read)."""
    mtime_ns: int = -1
    """File modification time from the same ``fstat``."""


ReadMore = Callable[[int], bytes]
"""``more(n)`` returns the next ``n`` bytes after those already read (fewer at the end)."""


def bad_info(code: str, detail: str, fmt: str = "") -> ImageInfo:
    return ImageInfo(0, 0, fmt, 1, code, detail)


def _tiff_orientation_and_size(buf: bytes) -> tuple[int, int, int]:
    """``(orientation, width, height)`` from IFD0 of a TIFF structure (EXIF or a .tif file)."""
    if len(buf) < 8 or buf[:2] not in (b"II", b"MM"):
        return 1, 0, 0
    e = "<" if buf[:2] == b"II" else ">"
    (off,) = struct.unpack_from(e + "I", buf, 4)
    if off + 2 > len(buf):
        return 1, 0, 0
    (n,) = struct.unpack_from(e + "H", buf, off)
    orient, w, h = 1, 0, 0
    for k in range(n):
        p = off + 2 + 12 * k
        if p + 12 > len(buf):
            break
        tag, typ = struct.unpack_from(e + "HH", buf, p)
        val = struct.unpack_from(e + ("H" if typ == 3 else "I"), buf, p + 8)[0]
        if tag == 0x0112:
            orient = int(val)
        elif tag == 0x0100:
            w = int(val)
        elif tag == 0x0101:
            h = int(val)
    return orient, w, h


_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(head: bytes, tail: bytes, size: int, more: ReadMore) -> ImageInfo:
    """Walk the marker segments up to start-of-scan: size from SOF, orientation from EXIF."""
    buf = head
    n = len(buf)
    pos, w, h, orient = 2, 0, 0, 1
    truncated = bad_info("image-truncated", "the file ends inside the JPEG header", "jpeg")
    while True:
        if pos + 9 > n and n < size:  # read on: a segment header needs up to 9 bytes
            buf += more(max(HEAD, n))
            n = len(buf)
            continue
        if pos + 4 > n:
            return truncated
        if buf[pos] != 0xFF:
            return bad_info("image-decode-failed", f"corrupt JPEG marker at byte {pos}", "jpeg")
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == 0xDA:
            break
        seglen = (buf[pos + 2] << 8) | buf[pos + 3]
        if marker in _SOF:
            if pos + 9 > n:
                return truncated
            h = (buf[pos + 5] << 8) | buf[pos + 6]
            w = (buf[pos + 7] << 8) | buf[pos + 8]
        elif marker == 0xE1 and buf[pos + 4 : pos + 10] == b"Exif\0\0":
            orient = _tiff_orientation_and_size(buf[pos + 10 : pos + 2 + seglen])[0]
        pos += 2 + seglen
    if w == 0 or h == 0:
        return bad_info(
            "image-decode-failed", "JPEG has no frame header (SOF) before its data", "jpeg"
        )
    found = buf.find(b"\xff\xd9", pos) >= 0 if n >= size else b"\xff\xd9" in tail
    if not found:
        return ImageInfo(w, h, "jpeg", orient, "image-truncated", "JPEG end marker FFD9 missing")
    return ImageInfo(w, h, "jpeg", orient, "", "")


def _png(head: bytes, tail: bytes) -> ImageInfo:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return bad_info("image-truncated", "PNG header (IHDR) missing or cut off", "png")
    w, h = struct.unpack_from(">II", head, 16)
    if b"IEND" not in tail:
        return ImageInfo(w, h, "png", 1, "image-truncated", "PNG end chunk IEND missing")
    return ImageInfo(w, h, "png", 1, "", "")


def _identify(head: bytes) -> str:
    """Format name from magic bytes; ``unsupported:<name>`` or ``""`` (not an image)."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "tiff"
    if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "pnm"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1")
        return "unsupported:AVIF" if brand.startswith("avi") else "unsupported:HEIC/HEIF"
    if head[:12] == b"\0\0\0\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return "unsupported:JPEG 2000"
    if head[:4] == b"8BPS":
        return "unsupported:Photoshop PSD"
    low = head[:512].lstrip().lower()
    if low.startswith(b"<svg") or (low.startswith(b"<?xml") and b"<svg" in head[:4096].lower()):
        return "unsupported:SVG"
    return ""


def _other(fmt: str, head: bytes, tail: bytes, size: int) -> ImageInfo:
    w = h = 0
    if fmt == "gif" and len(head) >= 10:
        w, h = struct.unpack_from("<HH", head, 6)
        if not tail.rstrip(b"\0").endswith(b";"):
            return ImageInfo(w, h, fmt, 1, "image-truncated", "GIF trailer ';' missing")
    elif fmt == "bmp" and len(head) >= 26:
        (declared,) = struct.unpack_from("<I", head, 2)
        (dib,) = struct.unpack_from("<I", head, 14)
        if dib == 12:
            w, h = struct.unpack_from("<HH", head, 18)
        else:
            w, h = struct.unpack_from("<ii", head, 18)
        if declared > size:
            return ImageInfo(
                w,
                abs(h),
                fmt,
                1,
                "image-truncated",
                f"BMP header says {declared} bytes, file has {size}",
            )
        h = abs(h)
    elif fmt == "webp" and len(head) >= 30:
        (riff,) = struct.unpack_from("<I", head, 4)
        chunk = head[12:16]
        if chunk == b"VP8 ":
            w, h = (v & 0x3FFF for v in struct.unpack_from("<HH", head, 26))
        elif chunk == b"VP8L":
            b = int.from_bytes(head[21:25], "little")
            w, h = (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
        elif chunk == b"VP8X":
            w = int.from_bytes(head[24:27], "little") + 1
            h = int.from_bytes(head[27:30], "little") + 1
        if riff + 8 > size:
            return ImageInfo(
                w,
                h,
                fmt,
                1,
                "image-truncated",
                f"WebP header says {riff + 8} bytes, file has {size}",
            )
    elif fmt == "tiff":
        orient, w, h = _tiff_orientation_and_size(head)
        return ImageInfo(w, h, fmt, orient, "", "")
    elif fmt == "pnm":
        toks = head[2:64].split()
        if len(toks) >= 2 and toks[0].isdigit() and toks[1].isdigit():
            w, h = int(toks[0]), int(toks[1])
    if w <= 0 or h <= 0:
        return bad_info("image-truncated", f"{fmt.upper()} header is cut off or invalid", fmt)
    return ImageInfo(w, h, fmt, 1, "", "")


def inspect_header(head: bytes, tail: bytes, size: int, more: ReadMore) -> ImageInfo:
    """Identify and check an image from its first bytes, last bytes and size; ``more`` reads
    on after ``head`` (needed only when a JPEG header is longer)."""
    if size == 0:
        return bad_info("image-empty", "the file is zero bytes")
    fmt = _identify(head)
    if fmt.startswith("unsupported:"):
        return bad_info("image-unsupported", f"{fmt[12:]} image", fmt[12:])
    if not fmt:
        kind = "text" if head[:256].isascii() else "unknown binary data"
        if head.lstrip()[:1] == b"<":
            kind = "HTML/XML text (a failed download?)"
        return bad_info("image-not-image", f"content is {kind}, not a known image format")
    if fmt == "jpeg":
        return _jpeg(head, tail, size, more)
    if fmt == "png":
        return _png(head, tail)
    return _other(fmt, head, tail, size)
