"""Darknet's input rule: stretch the image to the network size, or letterbox when the cfg says so.

``darknet detector test``/``map`` (``image.c``) feed the network ``resize_image(im, net_w,
net_h)``: the 8-bit image divided by 255, then a separable bilinear resize, along each row
first and then along each column, whose sample positions map the first and last pixels onto
each other (``scale = (in - 1) / (out - 1)``, PyTorch's ``align_corners=True``), no
antialiasing. With ``letter_box=1`` in ``[net]`` (``letterbox_image``) the image is resized
the same way to ``new_w x new_h`` (integer division keeps the aspect) and pasted centred
(offsets ``(net - new) // 2``) on a 0.5-grey canvas. This is a different rule from detforge's
own training letterbox, which is why it lives with the Darknet models.

:func:`resize_into` repeats Darknet's float32 arithmetic operation by operation, so the input
equals Darknet's bit for bit, including a quirk of ``resize_image``: its last output row takes
only ``(1 - dy) * part[iy]``, so where ``(out_h - 1) * scale`` rounds below ``in_h - 1`` (440
rows to 416, for one) that row is nearly black. It runs in the optional C helper
:mod:`detforge.models.darknet._resize` (0.7 ms for a 600x512 photo at 416x416, without the
GIL), else in PyTorch (the same numbers, one operation at a time).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from detforge.errors import DetforgeError

try:
    from detforge.models.darknet import _resize as _native
except ImportError:  # no C compiler when detforge was installed: PyTorch does the same
    _native = None  # type: ignore[assignment]


def letterbox_size(image_w: int, image_h: int, net_w: int, net_h: int) -> tuple[int, int]:
    """The resized image size inside a Darknet letterbox (``new_w, new_h``)."""
    if net_w / image_w < net_h / image_h:
        return net_w, (image_h * net_w) // image_w
    return (image_w * net_h) // image_h, net_h


def native_available() -> bool:
    """Whether the C helper was built (see the module docstring)."""
    return _native is not None


def resize_into(
    image: NDArray[np.uint8],
    out: NDArray[np.float32],
    *,
    x0: int = 0,
    y0: int = 0,
    size: tuple[int, int] | None = None,
    native: bool = True,
) -> None:
    """Darknet's ``resize_image`` of the (H, W, C) uint8 ``image`` to ``size`` ``(new_w,
    new_h)`` (default: all of ``out``), divided by 255, written into the (C, net_h, net_w)
    float32 array ``out`` at columns ``x0:x0 + new_w`` and rows ``y0:y0 + new_h``; the rest of
    ``out`` is left as it is. ``native=False`` uses the PyTorch version even where the C helper
    exists (tests compare the two)."""
    src = np.ascontiguousarray(image)
    if src.dtype != np.uint8 or src.ndim != 3:
        raise DetforgeError(f"Darknet's resize takes an (H, W, C) uint8 image, got "
                            f"{src.dtype} {src.shape}")  # fmt: skip
    channels, net_h, net_w = out.shape
    new_w, new_h = size if size is not None else (net_w, net_h)
    if src.shape[2] != channels or not out.flags.c_contiguous or out.dtype != np.float32:
        raise ValueError("out must be a C-contiguous float32 (C, net_h, net_w) array")
    if min(new_w, new_h) < 1:
        return  # a letterbox of an extreme aspect ratio: Darknet pastes nothing either
    if native and _native is not None:
        h, w = src.shape[:2]
        _native.resize_into(src, h, w, channels, out, net_h, net_w, x0, y0, new_w, new_h)
        return
    region = torch.from_numpy(out)[:, y0 : y0 + new_h, x0 : x0 + new_w]
    region.copy_(_resize_torch(src, new_w, new_h))


def _positions(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Darknet's sample positions along one axis: ``i = int(k * scale)`` (at most ``n_in -
    1``) and ``d = k * scale - i`` in float32 for ``k`` in ``0..n_out - 1``, ``scale = (n_in -
    1) / (n_out - 1)`` (0 for one output pixel)."""
    f32 = np.float32
    scale = f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else f32(0)
    s = np.arange(n_out, dtype=f32) * scale
    i = np.minimum(s.astype(np.int64), n_in - 1)
    return torch.from_numpy(i), torch.from_numpy((s - i.astype(f32)).astype(f32))


def _resize_torch(src: NDArray[np.uint8], new_w: int, new_h: int) -> torch.Tensor:
    """:func:`resize_into`'s arithmetic in PyTorch, one float32 operation at a time as in
    Darknet: (H, W, C) uint8 -> (C, new_h, new_w)."""
    h, w = src.shape[:2]
    src = src if src.flags.writeable else src.copy()  # torch warns on read-only arrays
    im = torch.from_numpy(src).permute(2, 0, 1).float().div_(255.0)  # Darknet's image / 255
    ix, dx = _positions(w, new_w)
    late = ix >= w - 1  # only by rounding: the next pixel's weight 1, as the C helper
    ix[late], dx[late] = max(w - 2, 0), 1.0
    nxt = (ix + 1).clamp_(max=w - 1)
    part = (1 - dx) * im.index_select(2, ix) + dx * im.index_select(2, nxt)
    part[:, :, -1] = im[:, :, -1]  # the last column (every column when w == 1): the last pixel
    if w == 1:
        part[...] = im[:, :, -1:]
    iy, dy = _positions(h, new_h)
    out = (1 - dy)[:, None] * part.index_select(1, iy)
    if h > 1 and new_h > 1:  # every row but the last adds dy * part[iy + 1]; the last does not
        rest = (iy[:-1] + 1).clamp_(max=h - 1)
        out[:, :-1] += dy[:-1, None] * part.index_select(1, rest)
    return out


def darknet_input(
    image: Any,
    net_w: int,
    net_h: int,
    *,
    letter_box: bool = False,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """An (H, W, 3) uint8 RGB image -> the (1, 3, net_h, net_w) float32 input in [0, 1]."""
    arr = np.ascontiguousarray(image)
    h, w = arr.shape[:2]
    channels = arr.shape[2] if arr.ndim == 3 else 1
    if not letter_box:
        out = np.empty((1, channels, net_h, net_w), np.float32)
        resize_into(arr.reshape(h, w, channels), out[0])
    else:
        new_w, new_h = letterbox_size(w, h, net_w, net_h)
        out = np.full((1, channels, net_h, net_w), 0.5, np.float32)
        resize_into(arr.reshape(h, w, channels), out[0], x0=(net_w - new_w) // 2,
                    y0=(net_h - new_h) // 2, size=(new_w, new_h))  # fmt: skip
    x = torch.from_numpy(out)
    return x if torch.device(device).type == "cpu" else x.to(device)
