"""Image file integrity from the bytes on disk, without decoding pixels (unless ``deep``).

:func:`inspect_image` reads the head and the tail of a file and tells apart: a zero-byte file,
a file that is not an image at all (text, an HTML error page from a failed download), an image
in a format detforge cannot decode (HEIC, AVIF, JPEG 2000, PSD, SVG), a truncated file (a JPEG
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from detforge.check.findings import Finding, finding
from detforge.utils.progress import progress

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


ReadMore = Callable[[int], bytes]
"""``more(n)`` returns the next ``n`` bytes after those already read (fewer at the end)."""


def _bad(code: str, detail: str, fmt: str = "") -> ImageInfo:
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


def _jpeg(head: bytes, tail: bytes, size: int, more: ReadMore) -> ImageInfo:
    buf = head
    pos, w, h, orient = 2, 0, 0, 1
    sos = -1
    while True:
        if pos + 4 > len(buf):
            if len(buf) >= size:
                return _bad("image-truncated", "the file ends inside the JPEG header", "jpeg")
            buf += more(max(HEAD, len(buf)))
            continue
        if buf[pos] != 0xFF:
            return _bad("image-decode-failed", f"corrupt JPEG marker at byte {pos}", "jpeg")
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        (seglen,) = struct.unpack_from(">H", buf, pos + 2)
        if marker == 0xE1 and buf[pos + 4 : pos + 10] == b"Exif\0\0":
            orient = _tiff_orientation_and_size(buf[pos + 10 : pos + 2 + seglen])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(buf):
                if len(buf) >= size:
                    return _bad("image-truncated", "the file ends inside the JPEG header", "jpeg")
                buf += more(HEAD)
                continue
            h, w = struct.unpack_from(">HH", buf, pos + 5)
        if marker == 0xDA:
            sos = pos
            break
        pos += 2 + seglen
    if w == 0 or h == 0:
        return _bad("image-decode-failed", "JPEG has no frame header (SOF) before its data", "jpeg")
    region = buf[sos:] if len(buf) >= size else tail
    if b"\xff\xd9" not in region:
        return ImageInfo(w, h, "jpeg", orient, "image-truncated", "JPEG end marker FFD9 missing")
    return ImageInfo(w, h, "jpeg", orient, "", "")


def _png(head: bytes, tail: bytes) -> ImageInfo:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return _bad("image-truncated", "PNG header (IHDR) missing or cut off", "png")
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
        return _bad("image-truncated", f"{fmt.upper()} header is cut off or invalid", fmt)
    return ImageInfo(w, h, fmt, 1, "", "")


def _inspect(head: bytes, tail: bytes, size: int, more: ReadMore) -> ImageInfo:
    """Identify and check an image from its first bytes, last bytes and size; ``more`` reads
    on after ``head`` (needed only when a JPEG header is longer)."""
    if size == 0:
        return _bad("image-empty", "the file is zero bytes")
    fmt = _identify(head)
    if fmt.startswith("unsupported:"):
        return _bad("image-unsupported", f"{fmt[12:]} image", fmt[12:])
    if not fmt:
        kind = "text" if head[:256].isascii() else "unknown binary data"
        if head.lstrip()[:1] == b"<":
            kind = "HTML/XML text (a failed download?)"
        return _bad("image-not-image", f"content is {kind}, not a known image format")
    if fmt == "jpeg":
        return _jpeg(head, tail, size, more)
    if fmt == "png":
        return _png(head, tail)
    return _other(fmt, head, tail, size)


def _decode(src: str | bytes) -> str:
    """Decode every pixel with Pillow; ``""`` when fine, else the error text."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
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
        info = _inspect(data, data[-TAIL:], len(data), lambda n: b"")
    except struct.error as exc:
        return _bad("image-truncated", f"header cut off ({exc})")
    if deep and not info.problem:
        err = _decode(data)
        if err:
            return info._replace(problem="image-decode-failed", detail=err)
    return info


def inspect_image(path: str, *, deep: bool = False) -> ImageInfo:
    """Check one image file; never raises for bad data (problems go in ``problem``).

    Reads the first ``HEAD`` bytes and the last ``TAIL`` bytes with two system calls.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return _bad("image-missing", "no such file")
    except OSError as exc:
        return _bad("image-unreadable", exc.strerror or str(exc))
    try:
        st = os.fstat(fd)
        size = st.st_size
        if stat.S_ISDIR(st.st_mode):
            return _bad("image-not-image", "this path is a folder")
        head = os.read(fd, HEAD)
        tail = head[-TAIL:] if size <= len(head) else os.pread(fd, TAIL, max(size - TAIL, 0))
        pos = [len(head)]

        def more(n: int) -> bytes:
            got = os.pread(fd, n, pos[0])
            pos[0] += len(got)
            return got

        info = _inspect(head, tail, size, more)._replace(digest=_digest(head, size))
    except IsADirectoryError:
        return _bad("image-not-image", "this path is a folder")
    except struct.error as exc:
        return _bad("image-truncated", f"header cut off ({exc})")
    except OSError as exc:
        return _bad("image-unreadable", exc.strerror or str(exc))
    finally:
        os.close(fd)
    if deep and not info.problem:
        err = _decode(path)
        if err:
            return info._replace(problem="image-decode-failed", detail=err)
    return info


def inspect_images(
    paths: Sequence[str], *, deep: bool = False, workers: int | None = None
) -> list[ImageInfo]:
    """:func:`inspect_image` over ``paths`` in threads, in order, with a progress bar."""
    n = len(paths)
    if n == 0:
        return []
    # The work is mostly Python (GIL-bound) once files are in the page cache; a few threads
    # overlap the reads of a cold disk without fighting over the interpreter.
    workers = workers or min(4, os.cpu_count() or 1)
    chunk = max(1, min(256, n // (workers * 4) or 1))
    groups = [paths[i : i + chunk] for i in range(0, n, chunk)]

    def run(group: Sequence[str]) -> list[ImageInfo]:
        return [inspect_image(p, deep=deep) for p in group]

    out: list[ImageInfo] = []
    if workers == 1 or len(groups) == 1:
        for g in progress(groups, total=len(groups), desc="images", unit="chunk"):
            out.extend(run(g))
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for res in progress(pool.map(run, groups), total=len(groups), desc="images", unit="chunk"):
            out.extend(res)
    return out


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
) -> list[Finding]:
    """Findings for inspected images. ``origins[i]`` is the ``(list file, line)`` that named
    image ``i``: a missing image is reported there, everything else at the image itself."""
    out: list[Finding] = []
    for i, (p, info) in enumerate(zip(paths, infos, strict=True)):
        if info.problem:
            if info.problem == "image-missing" and origins is not None:
                where, line = origins[i]
                msg = f"image {p} does not exist; {_ADVICE['image-missing']}"
                out.append(
                    finding("image-missing", msg + " (--fix drops it)", path=where, line=line)
                )
                continue
            advice = _ADVICE.get(info.problem, "")
            msg = f"{info.detail}; {advice} (--fix drops the image from the lists)"
            out.append(finding(info.problem, msg, path=p))
            continue
        if info.width < TINY or info.height < TINY:
            out.append(
                finding(
                    "image-tiny",
                    f"image is {info.width} x {info.height} px, smaller than one {TINY}-px "
                    "cell of the coarsest detection level; objects in it are barely learnable",
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
