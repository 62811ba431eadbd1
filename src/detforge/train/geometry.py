"""Image and box geometry for augmentation: crops, affine warps, box transforms (resizing
and the letterbox live in :mod:`detforge.data.letterbox`, shared with inference).

Same conventions as :mod:`detforge.train.augment`: images ``(H, W, 3)`` uint8 RGB, boxes
``(K, 4)`` float64 xyxy in continuous pixels (pixel ``(i, j)`` covers ``[j, j+1] x [i, i+1]``),
matrices ``(3, 3)`` mapping input pixels to output pixels.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from detforge.data.letterbox import FILL, as_boxes, resize

__all__ = [
    "FILL",
    "FloatArray",
    "ImageArray",
    "IntArray",
    "affine_matrix",
    "as_boxes",
    "clip_boxes",
    "crop_box",
    "crop_matrix",
    "crop_pad",
    "keep_boxes",
    "resize",
    "transform_boxes",
    "warp_affine",
]

ImageArray = NDArray[np.uint8]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def crop_pad(image: ImageArray, box: tuple[int, int, int, int], *, fill: int = FILL) -> ImageArray:
    """The integer pixel box ``(x1, y1, x2, y2)`` of ``image``; parts outside it are ``fill``."""
    x1, y1, x2, y2 = box
    h, w = image.shape[:2]
    if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
        return image[y1:y2, x1:x2]
    out = np.full((y2 - y1, x2 - x1, 3), fill, dtype=np.uint8)
    ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if ix2 > ix1 and iy2 > iy1:
        out[iy1 - y1 : iy2 - y1, ix1 - x1 : ix2 - x1] = image[iy1:iy2, ix1:ix2]
    return out


def clip_boxes(boxes: FloatArray, shape: tuple[int, int]) -> FloatArray:
    """Clip ``(K, 4)`` xyxy boxes to an image of ``shape = (h, w)``."""
    h, w = shape
    b = as_boxes(boxes).copy()
    np.clip(b[:, 0::2], 0.0, w, out=b[:, 0::2])
    np.clip(b[:, 1::2], 0.0, h, out=b[:, 1::2])
    return b


def keep_boxes(
    unclipped: FloatArray,
    clipped: FloatArray,
    *,
    min_size: float = 2.0,
    min_visibility: float = 0.1,
    max_aspect: float = 20.0,
) -> NDArray[np.bool_]:
    """``(K,)`` mask of boxes worth training on after a warp and a clip.

    A box is kept when its clipped width and height exceed ``min_size`` pixels, at least
    ``min_visibility`` of its unclipped area is still inside the image, and its clipped
    aspect ratio (long side / short side) is below ``max_aspect``.
    """
    wh0 = np.clip(unclipped[:, 2:] - unclipped[:, :2], 0.0, None)
    wh = np.clip(clipped[:, 2:] - clipped[:, :2], 0.0, None)
    area0, area = wh0.prod(1), wh.prod(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        vis = np.where(area0 > 0, area / area0, 0.0)
        aspect = np.maximum(wh[:, 0] / wh[:, 1], wh[:, 1] / wh[:, 0])
    ok = (wh[:, 0] > min_size) & (wh[:, 1] > min_size) & (vis > min_visibility)
    return np.asarray(ok & (aspect < max_aspect), dtype=np.bool_)


def affine_matrix(
    *,
    in_center: tuple[float, float],
    out_center: tuple[float, float],
    degrees: float = 0.0,
    scale: float = 1.0,
    shear: tuple[float, float] = (0.0, 0.0),
) -> FloatArray:
    """``(3, 3)`` matrix mapping input pixels to output pixels.

    The input point ``in_center = (x, y)`` goes to ``out_center``; around it the image is
    sheared by ``shear = (sx, sy)`` degrees, rotated by ``degrees`` (counter-clockwise as
    seen on screen) and scaled by ``scale``.
    """
    c = np.eye(3)
    c[:2, 2] = -np.asarray(in_center, dtype=np.float64)
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0], [0, 0, 1]])
    rot[:2, :2] *= scale
    sh = np.eye(3)
    sh[0, 1] = math.tan(math.radians(shear[0]))
    sh[1, 0] = math.tan(math.radians(shear[1]))
    t = np.eye(3)
    t[:2, 2] = np.asarray(out_center, dtype=np.float64)
    return np.asarray(t @ sh @ rot @ c, dtype=np.float64)


def transform_boxes(boxes: FloatArray, matrix: FloatArray) -> FloatArray:
    """Boxes ``(K, 4)`` xyxy mapped by ``matrix`` ``(3, 3)``: the xyxy hull of the 4 corners."""
    b = as_boxes(boxes)
    if not len(b):
        return b.copy()
    corners = b[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)  # (K, 4 corners, xy)
    pts = corners @ matrix[:2, :2].T + matrix[:2, 2]
    return np.concatenate([pts.min(1), pts.max(1)], axis=1)


def crop_box(matrix: FloatArray, out_shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The integer input box ``(x1, y1, x2, y2)`` that ``matrix`` stretches onto the output, or
    ``None`` when the warp is not such a crop-and-resize (rotation, shear, flip, fractional box).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m[0, 1] != 0 or m[1, 0] != 0 or m[0, 0] <= 0 or m[1, 1] <= 0:
        return None
    h, w = out_shape
    box = np.array([-m[0, 2], -m[1, 2], w - m[0, 2], h - m[1, 2]]) / m[[0, 1, 0, 1], [0, 1, 0, 1]]
    r = np.round(box)
    if np.abs(box - r).max() > 1e-6 or r[2] <= r[0] or r[3] <= r[1]:
        return None
    return int(r[0]), int(r[1]), int(r[2]), int(r[3])


def crop_matrix(box: tuple[int, int, int, int], out_shape: tuple[int, int]) -> FloatArray:
    """``(3, 3)`` matrix stretching the input box ``(x1, y1, x2, y2)`` onto ``out_shape`` (h, w)."""
    x1, y1, x2, y2 = box
    sx, sy = out_shape[1] / (x2 - x1), out_shape[0] / (y2 - y1)
    return np.array([[sx, 0.0, -x1 * sx], [0.0, sy, -y1 * sy], [0.0, 0.0, 1.0]])


def warp_affine(
    image: ImageArray, matrix: FloatArray, out_shape: tuple[int, int], *, fill: int = FILL
) -> ImageArray:
    """Warp ``image`` by ``matrix`` (input -> output pixels) into ``out_shape = (h, w)``.

    Bilinear sampling at pixel centres in continuous coordinates; uncovered area is ``fill``.
    A warp that only stretches an integer box (:func:`crop_box`, what :class:`RandomAffine`
    draws without rotation or shear) is a crop and an antialiased :func:`resize`; any other
    goes through one Pillow affine transform (slower, not antialiased).
    """
    h, w = out_shape
    box = crop_box(matrix, out_shape)
    if box is not None:
        return resize(crop_pad(image, box, fill=fill), (w, h))
    inv = np.linalg.inv(matrix)[:2].reshape(-1)
    out = Image.fromarray(image).transform(
        (w, h),
        Image.Transform.AFFINE,
        tuple(float(v) for v in inv),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(fill, fill, fill),
    )
    return np.asarray(out)
