"""Box formats and pure conversions between them.

Conventions used everywhere in detforge:

* Pixel coordinates are *continuous*: the image spans ``[0, W] x [0, H]``, a box that covers
  the whole image is ``(0, 0, W, H)`` in ``XYXY_PIXEL``. There is no ``+1``; formats that count
  pixels 1-based (Pascal VOC) convert at their reader/writer, not here.
* ``CXCYWH_NORM`` is Darknet/Ultralytics: centre and size divided by the image width/height.
* ``XYWH_PIXEL`` is COCO: top-left corner and size in pixels.

All functions take and return ``float64`` arrays of shape ``(N, 4)``; widths and heights are
per-box arrays of shape ``(N,)`` (or scalars) giving the size of the image each box lives on.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


class BoxFormat(StrEnum):
    """The coordinate convention of an ``(N, 4)`` box array."""

    CXCYWH_NORM = "cxcywh_norm"
    """Centre x, centre y, width, height, each divided by the image width or height (Darknet)."""
    XYXY_PIXEL = "xyxy_pixel"
    """Left, top, right, bottom in continuous pixels (torchvision, Pascal VOC after -1 shift)."""
    XYWH_PIXEL = "xywh_pixel"
    """Left, top, width, height in continuous pixels (COCO)."""

    @property
    def normalized(self) -> bool:
        return self is BoxFormat.CXCYWH_NORM


def _as_boxes(boxes: ArrayLike) -> FloatArray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {arr.shape}")
    return arr


def cxcywh_to_xyxy(boxes: ArrayLike) -> FloatArray:
    """``(cx, cy, w, h) -> (x1, y1, x2, y2)`` in the same units."""
    b = _as_boxes(boxes)
    half = b[:, 2:] / 2.0
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def xyxy_to_cxcywh(boxes: ArrayLike) -> FloatArray:
    """``(x1, y1, x2, y2) -> (cx, cy, w, h)`` in the same units."""
    b = _as_boxes(boxes)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2.0, b[:, 2:] - b[:, :2]], axis=1)


def xywh_to_xyxy(boxes: ArrayLike) -> FloatArray:
    """``(x, y, w, h) -> (x1, y1, x2, y2)`` in the same units."""
    b = _as_boxes(boxes)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: ArrayLike) -> FloatArray:
    """``(x1, y1, x2, y2) -> (x, y, w, h)`` in the same units."""
    b = _as_boxes(boxes)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def _scale(widths: ArrayLike, heights: ArrayLike, n: int) -> FloatArray:
    w = np.broadcast_to(np.asarray(widths, dtype=np.float64), (n,))
    h = np.broadcast_to(np.asarray(heights, dtype=np.float64), (n,))
    return np.stack([w, h, w, h], axis=1)


def convert_boxes(
    boxes: ArrayLike,
    src: BoxFormat,
    dst: BoxFormat,
    *,
    widths: ArrayLike | None = None,
    heights: ArrayLike | None = None,
) -> FloatArray:
    """Convert ``(N, 4)`` boxes from ``src`` to ``dst`` format.

    ``widths``/``heights`` (shape ``(N,)`` or scalar, pixels) are required whenever exactly one
    of the two formats is normalized. The result is a new array; the input is never modified.
    """
    b = _as_boxes(boxes)
    src, dst = BoxFormat(src), BoxFormat(dst)
    if src is dst:
        return b.copy()
    # Everything goes through pixel xyxy.
    if src is BoxFormat.XYXY_PIXEL:
        xyxy = b.copy()
    elif src is BoxFormat.XYWH_PIXEL:
        xyxy = xywh_to_xyxy(b)
    else:
        if widths is None or heights is None:
            raise ValueError("widths and heights are needed to convert from normalized boxes")
        xyxy = cxcywh_to_xyxy(b) * _scale(widths, heights, len(b))
    if dst is BoxFormat.XYXY_PIXEL:
        return xyxy
    if dst is BoxFormat.XYWH_PIXEL:
        return xyxy_to_xywh(xyxy)
    if widths is None or heights is None:
        raise ValueError("widths and heights are needed to convert to normalized boxes")
    return xyxy_to_cxcywh(xyxy / _scale(widths, heights, len(b)))


def box_area(boxes: ArrayLike, fmt: BoxFormat = BoxFormat.XYXY_PIXEL) -> FloatArray:
    """Area of each box, ``(N,)``, in the units of ``fmt`` (negative sizes give 0)."""
    b = _as_boxes(boxes)
    wh = b[:, 2:] - b[:, :2] if fmt is BoxFormat.XYXY_PIXEL else b[:, 2:]
    wh = np.clip(wh, 0.0, None)
    return np.asarray(wh[:, 0] * wh[:, 1], dtype=np.float64)


def box_iou(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Pairwise IoU of pixel-xyxy boxes: ``(N, 4) x (M, 4) -> (N, M)``."""
    a_, b_ = _as_boxes(a), _as_boxes(b)
    lt = np.maximum(a_[:, None, :2], b_[None, :, :2])
    rb = np.minimum(a_[:, None, 2:], b_[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    union = box_area(a_)[:, None] + box_area(b_)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.asarray(iou, dtype=np.float64)
