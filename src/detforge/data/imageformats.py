"""Image formats from their bytes: the one image-header reader and the one extension list.

:func:`parse_header` identifies a file from its first bytes (magic numbers) and reads its
stored width and height in pixels and its EXIF orientation (1 = none) without decoding pixels:
JPEG (baseline, progressive, lossless SOF markers; EXIF in APP1), PNG, GIF, BMP, WebP (lossy,
lossless, extended), TIFF and PNM. Problems raise :class:`HeaderError`, whose ``code`` is a
``detforge check`` finding code. Both users go through it:

* :mod:`detforge.data.imagesize` (sizes for readers and training, one file or millions, from
  heads the C helper read) applies the orientation and turns errors into messages;
* :func:`inspect_header` (the checker, :mod:`detforge.check.images`) also checks the last
  bytes: a JPEG must end with its ``FFD9`` marker (searched after the start-of-scan, so an
  embedded EXIF thumbnail cannot fake it), a PNG with ``IEND``, a GIF with ``;``; BMP and WebP
  must be as long as their headers say; bytes between JPEG segments are reported.

:data:`IMAGE_EXTENSIONS` is the list of suffixes every command treats as images.
"""

from __future__ import annotations

import codecs
import re
import struct
from collections.abc import Callable
from typing import NamedTuple

HEAD = 1 << 16
"""Bytes the checker reads from a file's start (TIFF directories must lie within them)."""
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
"""Format -> the lower-case suffixes files of that format carry."""
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(e for exts in EXTENSIONS.values() for e in exts)
"""Lower-case suffixes detforge treats as images (scanning folders, telling images from lists
and videos, finding an image beside an annotation), most common first."""
IMAGE_EXTENSIONS_ANY_CASE: tuple[str, ...] = (
    *IMAGE_EXTENSIONS,
    *(e.upper() for e in IMAGE_EXTENSIONS),
)
""":data:`IMAGE_EXTENSIONS`, then the same in upper case (``.JPG``), for probing file names."""

ReadMore = Callable[[int], bytes]
"""``more(n)`` returns the next ``n`` bytes after those already read (fewer at the end)."""


class HeaderError(Exception):
    """The bytes are not a readable image header; ``code`` is a check finding code
    (``image-empty``, ``image-not-image``, ``image-unsupported``, ``image-truncated``,
    ``image-decode-failed``)."""

    def __init__(self, code: str, detail: str, fmt: str = "") -> None:
        super().__init__(detail)
        self.code, self.detail, self.format = code, detail, fmt


class Header(NamedTuple):
    """What :func:`parse_header` read: stored ``width``/``height`` (pixels, before the EXIF
    ``orientation`` is applied). JPEG only: ``scan`` is the offset of the start-of-scan marker
    when the walk went that far (else -1), ``garbage`` the offset of the first byte between
    segments that is not a marker (-1 when none); ``buf`` holds every byte read."""

    format: str
    width: int
    height: int
    orientation: int = 1
    scan: int = -1
    garbage: int = -1
    buf: bytes = b""


def tiff_orientation_and_size(buf: bytes) -> tuple[int, int, int]:
    """``(orientation, width, height)`` from IFD0 of a TIFF structure (an EXIF block or a .tif
    file); width/height are 0 when absent, orientation 1 when absent or not 1-8."""
    if len(buf) < 8 or buf[:2] not in (b"II", b"MM"):
        raise HeaderError("image-decode-failed", "bad TIFF/EXIF byte order")
    end = "<" if buf[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(end + "I", buf, 4)
    if ifd + 2 > len(buf):
        raise HeaderError("image-truncated", "TIFF/EXIF directory outside the bytes read")
    (count,) = struct.unpack_from(end + "H", buf, ifd)
    orient, width, height = 1, 0, 0
    for i in range(count):
        off = ifd + 2 + 12 * i
        if off + 12 > len(buf):
            break
        tag, typ = struct.unpack_from(end + "HH", buf, off)
        if typ not in (3, 4):  # SHORT, LONG
            continue
        (val,) = struct.unpack_from(end + ("H" if typ == 3 else "I"), buf, off + 8)
        if tag == 0x0112:
            orient = val if 1 <= val <= 8 else 1
        elif tag == 0x0100:
            width = val
        elif tag == 0x0101:
            height = val
    return orient, width, height


def identify(head: bytes) -> str:
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


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0xD8, 0x01, *range(0xD0, 0xD8)})
_TRUNCATED_JPEG = "the file ends inside the JPEG header (truncated?)"


class _Bytes:
    """A file's bytes read so far, read on through ``more`` up to ``size``."""

    def __init__(self, head: bytes, size: int, more: ReadMore) -> None:
        self.buf, self.size, self.more = head, size, more

    def need(self, k: int) -> bool:
        """Whether the first ``k`` bytes are there (reading on as needed)."""
        while len(self.buf) < k and len(self.buf) < self.size:
            got = self.more(max(HEAD, k - len(self.buf)))
            if not got:
                break
            self.buf += got
        return len(self.buf) >= k


def _jpeg(data: _Bytes, to_scan: bool) -> Header:  # one walk, its cases side by side
    """Walk the marker segments to the frame header (SOF; with ``to_scan`` on to the
    start-of-scan): size from SOF, orientation from the first EXIF APP1 that has one. Bytes
    between segments are skipped, as decoders do (their offset is kept). Works on the local
    ``buf``; ``data.need`` reads on only where the bytes so far end."""
    buf = data.buf
    n = len(buf)
    i, orient, w, h, scan, garbage = 2, 1, 0, 0, -1, -1
    while True:
        j = buf.find(b"\xff", i)
        if j < 0:
            if not data.need(n + 1):
                raise HeaderError("image-truncated", _TRUNCATED_JPEG, "jpeg")
            buf, n = data.buf, len(data.buf)
            continue
        if j != i and garbage < 0:
            garbage = i
        i = j + 1
        while True:  # fill bytes
            if i >= n:
                if not data.need(i + 1):
                    raise HeaderError("image-truncated", _TRUNCATED_JPEG, "jpeg")
                buf, n = data.buf, len(data.buf)
            if buf[i] != 0xFF:
                break
            i += 1
        m = buf[i]
        i += 1
        if m in _STANDALONE:
            continue
        if m == 0xD9:
            break
        if i + 2 > n:
            if not data.need(i + 2):
                raise HeaderError("image-truncated", _TRUNCATED_JPEG, "jpeg")
            buf, n = data.buf, len(data.buf)
        length = (buf[i] << 8) | buf[i + 1]
        if length < 2:
            raise HeaderError("image-decode-failed", "corrupt JPEG segment length", "jpeg")
        end = i + length
        if m == 0xDA:
            scan = i - 2
            break
        if m in _SOF or (m == 0xE1 and orient == 1):
            if end > n:
                if not data.need(end):
                    raise HeaderError("image-truncated", _TRUNCATED_JPEG, "jpeg")
                buf, n = data.buf, len(data.buf)
            if m in _SOF:
                if length < 7:
                    raise HeaderError("image-decode-failed", "corrupt JPEG frame header", "jpeg")
                h = (buf[i + 3] << 8) | buf[i + 4]
                w = (buf[i + 5] << 8) | buf[i + 6]
                if not to_scan:
                    break
            elif buf.startswith(b"Exif\x00\x00", i + 2, end):
                try:
                    orient = tiff_orientation_and_size(buf[i + 8 : end])[0]
                except (HeaderError, struct.error):
                    orient = 1  # a broken EXIF block does not make the image unreadable
        i = end
    if w == 0 or h == 0:
        raise HeaderError(
            "image-decode-failed", "JPEG has no frame header (SOF) before its data", "jpeg"
        )
    return Header("jpeg", w, h, orient, scan, garbage, buf)


def _webp(head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("image-decode-failed", "bad VP8 start code", "webp")
        w, h = struct.unpack_from("<HH", head, 26)
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        if head[20] != 0x2F:
            raise HeaderError("image-decode-failed", "bad VP8L signature", "webp")
        (bits,) = struct.unpack_from("<I", head, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    raise HeaderError("image-decode-failed", f"unknown WebP chunk {chunk!r}", "webp")


_MIN_HEAD = {"png": 24, "gif": 10, "bmp": 26, "webp": 30, "pnm": 3}


def _fixed(fmt: str, head: bytes) -> tuple[int, int]:
    """``(width, height)`` of the formats whose size sits at a fixed place in the header."""
    if len(head) < _MIN_HEAD[fmt] or (fmt == "png" and head[12:16] != b"IHDR"):
        what = "PNG header (IHDR)" if fmt == "png" else f"{fmt.upper()} header"
        raise HeaderError("image-truncated", f"{what} missing or cut off", fmt)
    if fmt == "png":
        return struct.unpack_from(">II", head, 16)  # type: ignore[return-value]
    if fmt == "gif":
        return struct.unpack_from("<HH", head, 6)  # type: ignore[return-value]
    if fmt == "bmp":
        (dib,) = struct.unpack_from("<I", head, 14)
        w, h = struct.unpack_from("<HH" if dib == 12 else "<ii", head, 18)
        return w, abs(h)
    if fmt == "webp":
        return _webp(head)
    toks = head[2:64].split()  # pnm
    if len(toks) >= 2 and toks[0].isdigit() and toks[1].isdigit():
        return int(toks[0]), int(toks[1])
    return 0, 0


_ZERO_CAUSE = "an interrupted copy or download?"
_ZERO_HINT = f"not an image: {_ZERO_CAUSE}"
_NOT_IMAGE = "not a JPEG, PNG, GIF, BMP, WebP, TIFF or PNM"
_SNIFF = 4096  # bytes of a file's start looked at to tell text from binary data


def _as_text(head: bytes, whole: bool) -> str | None:
    """The first :data:`_SNIFF` bytes as text (UTF-8, an optional BOM), or ``None`` when they
    hold a byte no text file has (NUL and the other control characters but tab, newline,
    carriage return, form feed and vertical tab). A character cut at the end is no fault
    unless ``whole`` (the bytes are the whole file)."""
    sample = head[:_SNIFF]
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(sample, final=whole and len(sample) == len(head))
    except UnicodeDecodeError:
        return None
    if any((ord(c) < 32 and c not in "\t\n\r\f\v") or c == "\x7f" for c in text):
        return None
    return text


def not_image_detail(head: bytes, size: int) -> str:
    """What a file whose magic bytes are no image's holds, for the ``image-not-image``
    message: zero bytes (a copy or download that never wrote its data), an HTML page (an
    error or login page saved under the image's name), other markup, a Git LFS pointer, text
    (quoted from its first line), or unknown binary data. ``head``: the file's first bytes,
    ``size`` its length (all of it was read when ``len(head) >= size``)."""
    whole = len(head) >= size
    if not head.strip(b"\0"):
        if whole:
            many = f"all {size} bytes are" if size > 1 else "its one byte is"
            return f"{many} zero ({_ZERO_HINT})"
        return f"the first {len(head)} bytes are all zero ({_ZERO_HINT})"
    text = _as_text(head, whole)
    if text is None:
        return f"content is unknown binary data, {_NOT_IMAGE}"
    low = text.lstrip().lower()
    if low.startswith("version https://git-lfs.github.com/spec/"):
        return (
            "content is a Git LFS pointer, not the image (the repository was cloned without "
            "'git lfs pull'?)"
        )
    if low.startswith(("<!doctype html", "<html")) or (
        low.startswith("<") and re.search(r"<(html|head|body)[\s>]", low[:_SNIFF])
    ):
        return f"content is an HTML page (a failed download?), {_NOT_IMAGE}"
    if low.startswith("<"):
        return f"content is XML or other markup, {_NOT_IMAGE}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not first:
        return f"content is only blank space, {_NOT_IMAGE}"
    quote = first if len(first) <= 40 else first[:40] + "..."
    return f'content is text ("{quote}"), {_NOT_IMAGE}'


def parse_header(head: bytes, size: int, more: ReadMore, *, to_scan: bool = False) -> Header:
    """Identify an image from ``head`` (its first bytes; ``size`` is the file's length) and read
    its stored size and orientation; ``more`` reads on after ``head`` when a JPEG header or a
    TIFF directory lies further. Raises :class:`HeaderError` for anything that is not a
    readable header. ``to_scan``: walk a JPEG on to its start-of-scan (for end checks)."""
    if size == 0:
        raise HeaderError("image-empty", "the file is empty (zero bytes)")
    fmt = identify(head)
    if fmt.startswith("unsupported:"):
        raise HeaderError("image-unsupported", f"{fmt[12:]} image", fmt[12:])
    if not fmt:
        raise HeaderError("image-not-image", not_image_detail(head, size))
    if fmt == "jpeg":
        return _jpeg(_Bytes(head, size, more), to_scan)
    orient = 1
    if fmt == "tiff":
        data = _Bytes(head, size, more)
        data.need(min(size, HEAD))
        head = data.buf
        orient, w, h = tiff_orientation_and_size(head[:HEAD])
    else:
        w, h = _fixed(fmt, head)
    if w <= 0 or h <= 0:
        raise HeaderError(
            "image-truncated", f"{fmt.upper()} header is cut off or invalid (size {w}x{h})", fmt
        )
    return Header(fmt, int(w), int(h), orient, buf=head)


class ImageInfo(NamedTuple):
    """What the checker found. ``problem`` is a finding code or ``""`` when fine; ``width``
    and ``height`` are stored pixels (before ``orientation``)."""

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


def bad_info(code: str, detail: str, fmt: str = "") -> ImageInfo:
    return ImageInfo(0, 0, fmt, 1, code, detail)


def _end_problem(hdr: Header, tail: bytes, size: int) -> str:
    """Why the file is cut off after its header (``""`` when its end is as it should be)."""
    fmt, buf = hdr.format, hdr.buf
    if fmt == "jpeg":
        whole = len(buf) >= size
        if not (buf.find(b"\xff\xd9", hdr.scan) >= 0 if whole else b"\xff\xd9" in tail):
            return "JPEG end marker FFD9 missing"
    elif fmt == "png" and b"IEND" not in tail:
        return "PNG end chunk IEND missing"
    elif fmt == "gif" and not tail.rstrip(b"\0").endswith(b";"):
        return "GIF trailer ';' missing"
    elif fmt == "bmp" and (declared := struct.unpack_from("<I", buf, 2)[0]) > size:
        return f"BMP header says {declared} bytes, file has {size}"
    elif fmt == "webp" and (riff := struct.unpack_from("<I", buf, 4)[0]) + 8 > size:
        return f"WebP header says {riff + 8} bytes, file has {size}"
    return ""


def inspect_header(head: bytes, tail: bytes, size: int, more: ReadMore) -> ImageInfo:
    """Identify and check an image from its first bytes, last bytes and size (the checker's
    view: the header of :func:`parse_header` plus its end checks); ``more`` reads on after
    ``head`` (needed only when a JPEG header is longer)."""
    try:
        hdr = parse_header(head, size, more, to_scan=True)
    except HeaderError as exc:
        return bad_info(exc.code, exc.detail, exc.format)
    if hdr.garbage >= 0:
        detail = f"corrupt JPEG marker at byte {hdr.garbage}"
        return ImageInfo(hdr.width, hdr.height, "jpeg", 1, "image-decode-failed", detail)
    end = _end_problem(hdr, tail, size)
    if end and tail and not tail.strip(b"\0"):
        end += f" (the last {len(tail)} bytes are zero: {_ZERO_CAUSE})"
    problem = "image-truncated" if end else ""
    return ImageInfo(hdr.width, hdr.height, hdr.format, hdr.orientation, problem, end)
