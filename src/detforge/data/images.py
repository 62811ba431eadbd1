"""Decoding image files to pixels: the one decoder training, validation, prediction and
``show`` share, so a model sees the same pixels everywhere.

:func:`load_image` decodes with Pillow: EXIF orientation applied (``exif_transpose``, as
OpenCV's ``imread`` does and as :mod:`detforge.data.imagesize` reports sizes), any mode (grey,
palette, RGBA, 16-bit, float) made ``(h, w, 3)`` uint8 RGB (:func:`to_rgb_array`), and, with
``fit``, resized straight to :func:`detforge.data.letterbox.fit_size` (JPEGs shrunk in the DCT
first when the target is at most half the stored size). Decoding is bounded: an image
declaring more than :data:`MAX_PIXELS` is a one-line :class:`DetforgeError` before any pixel
buffer is allocated, never a decompression-bomb traceback or an out-of-memory kill.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError

MAX_PIXELS = 178_956_970
"""Most pixels detforge decodes from one image (about 179 megapixels, ~540 MB as RGB):
Pillow's own decompression-bomb limit at its default setting, checked explicitly."""

_SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees


class Decoded(NamedTuple):
    """``image`` ``(h, w, 3)`` uint8 RGB and ``orig_shape`` ``(h0, w0)``, the full-resolution
    size after EXIF rotation (``image``'s own size unless it was decoded with ``fit``)."""

    image: NDArray[np.uint8]
    orig_shape: tuple[int, int]


def to_rgb_array(im: Any) -> NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 RGB from a Pillow image of any mode.

    16/32-bit integer images (microscopy TIFFs) keep their top 8 bits; float images are taken
    as ``0..1`` when their maximum is <= 1, else as ``0..255``; alpha and palettes are dropped
    after conversion to RGBA.
    """
    if im.mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if im.mode.startswith("I") or im.mode == "F":
        a = np.asarray(im).astype(np.float64)
        unit = im.mode == "F" and a.size > 0 and a.max() <= 1.0
        a = a * 255.0 if unit else a if im.mode == "F" else a / 256.0
        grey = np.clip(a, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if "A" in im.mode or im.mode == "P":
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _too_big(path: str | os.PathLike[str], size: tuple[int, int] | None) -> DetforgeError:
    if size is None:
        try:
            from detforge.data.imagesize import read_image_header

            head = read_image_header(path)
            size = (head.width, head.height)
        except DetforgeError:
            size = None
    what = (
        f"{size[0]}x{size[1]} pixels ({size[0] * size[1] / 1e6:,.0f} megapixels)"
        if size
        else ("more pixels than Pillow decodes safely")
    )
    return DetforgeError(
        f"the image is {what}; detforge decodes at most {MAX_PIXELS / 1e6:.0f} megapixels. "
        "Shrink or tile it first",
        path=path,
    )


@contextlib.contextmanager
def open_image(src: str | os.PathLike[str] | IO[bytes]) -> Iterator[Any]:
    """``PIL.Image.open(src)`` without Pillow's ``DecompressionBombWarning`` (detforge checks
    :data:`MAX_PIXELS` itself and says so in one line); the warning filter is changed only
    for the call, never at import. Pillow's ``DecompressionBombError`` still raises."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(src)
    with im:
        yield im


def load_image(
    path: str | os.PathLike[str],
    *,
    fit: int | tuple[int, int] | None = None,
    exif_transpose: bool = True,
) -> Decoded:
    """Decode ``path`` to ``(h, w, 3)`` uint8 RGB.

    ``fit``: ``S`` or ``(H, W)``: the image comes back resized (antialiased bilinear) to
    :func:`~detforge.data.letterbox.fit_size` of its full-resolution size, i.e. the size
    :func:`~detforge.data.letterbox.letterbox` would resize it to; ``None``: full resolution.
    ``exif_transpose=False`` keeps the stored orientation. A missing, corrupt or oversized
    (:data:`MAX_PIXELS`) file is a :class:`DetforgeError` naming it.
    """
    from PIL import Image, ImageOps

    from detforge.data.letterbox import fit_size, resize

    try:
        with open_image(path) as im:
            w0, h0 = im.size
            if w0 * h0 > MAX_PIXELS:
                raise _too_big(path, (w0, h0))
            orient = im.getexif().get(0x0112, 1) if exif_transpose else 1
            if orient in _SWAPS_AXES:
                w0, h0 = h0, w0
            th, tw = fit_size((h0, w0), fit) if fit is not None else (h0, w0)
            if fit is not None and im.format == "JPEG" and max(th, tw) * 2 <= max(h0, w0):
                im.draft("RGB", (tw, th) if orient not in _SWAPS_AXES else (th, tw))
            im.load()
            out: Image.Image = im
            if orient != 1:
                out = ImageOps.exif_transpose(out)
            arr = to_rgb_array(out)
    except FileNotFoundError:
        raise DetforgeError("image not found", path=path) from None
    except Image.DecompressionBombError:
        raise _too_big(path, None) from None
    except MemoryError:
        raise DetforgeError(
            "not enough memory to decode the image; shrink it or free memory", path=path
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        raise DetforgeError(
            f"cannot decode the image ({exc}); it may be truncated or not an image. "
            "'detforge check --deep' lists every such file",
            path=path,
        ) from None
    return Decoded(resize(arr, (tw, th)), (h0, w0))
