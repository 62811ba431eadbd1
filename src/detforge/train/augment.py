"""Training augmentations as pure functions on ``(image, boxes, cls)``, plus thin random wrappers.

Conventions shared by every function here:

* ``image`` is ``(H, W, 3)`` uint8 RGB (a numpy array; never modified in place).
* ``boxes`` is ``(K, 4)`` float64 ``xyxy`` in *continuous* pixels of ``image``: the image spans
  ``[0, W] x [0, H]`` and pixel ``(i, j)`` covers ``[j, j+1] x [i, i+1]``.
* ``cls`` is ``(K,)`` int64 class ids, kept aligned with ``boxes`` when boxes are dropped.

The pure functions take every random quantity as an argument, so they are deterministic and
testable; the ``Random*`` classes hold hyper-parameters, draw those quantities from a
``numpy.random.Generator`` and call the pure functions. The geometry they share (crops,
affine warps, box transforms, clipping and filtering) lives in :mod:`detforge.train.geometry`
and is re-exported here; the letterbox and its inverse are :mod:`detforge.data.letterbox`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from detforge.train.geometry import (
    FILL,
    FloatArray,
    ImageArray,
    IntArray,
    affine_matrix,
    as_boxes,
    clip_boxes,
    crop_box,
    crop_matrix,
    crop_pad,
    keep_boxes,
    resize,
    transform_boxes,
    warp_affine,
)

__all__ = [
    "FILL",
    "FloatArray",
    "ImageArray",
    "IntArray",
    "RandomAffine",
    "RandomFlip",
    "RandomHSV",
    "Sample",
    "affine_matrix",
    "clip_boxes",
    "color_matrix",
    "crop_box",
    "crop_matrix",
    "crop_pad",
    "hflip",
    "hsv_jitter",
    "keep_boxes",
    "mixup",
    "mosaic4",
    "random_affine",
    "resize",
    "transform_boxes",
    "vflip",
    "warp_affine",
]

Sample = tuple[ImageArray, FloatArray, IntArray]
"""``(image (H, W, 3) uint8, boxes (K, 4) float64 xyxy pixels, cls (K,) int64)``."""


# ----------------------------------------------------------------------------- flips / colour
def hflip(image: ImageArray, boxes: FloatArray, cls: IntArray) -> Sample:
    """Mirror left-right: ``x -> W - x``."""
    w = image.shape[1]
    b = as_boxes(boxes).copy()
    b[:, [0, 2]] = w - b[:, [2, 0]]
    return _flip(image, 1), b, cls


def vflip(image: ImageArray, boxes: FloatArray, cls: IntArray) -> Sample:
    """Mirror up-down: ``y -> H - y``."""
    h = image.shape[0]
    b = as_boxes(boxes).copy()
    b[:, [1, 3]] = h - b[:, [3, 1]]
    return _flip(image, 0), b, cls


def _flip(image: ImageArray, axis: int) -> ImageArray:
    """A flipped copy: rows reversed by numpy (block copies), columns by Pillow (~3x faster
    than numpy's reversed-stride copy of 3-byte pixels, and free of torch's thread pool)."""
    if axis == 0:
        return np.ascontiguousarray(image[::-1])
    return np.asarray(Image.fromarray(image).transpose(Image.Transpose.FLIP_LEFT_RIGHT))


_LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601 weights, as PIL's "L" conversion


def color_matrix(*, hue: float, sat: float, val: float) -> FloatArray:
    """``(3, 3)`` RGB matrix of :func:`hsv_jitter`: ``val * rotate(hue) @ saturate(sat)``.

    ``rotate`` turns colours about the grey axis ``(1, 1, 1)`` by ``hue`` turns (red towards
    green for ``hue > 0``, like HSV hue); ``saturate`` blends each pixel with its luma.
    """
    m_sat = sat * np.eye(3) + (1.0 - sat) * np.tile(_LUMA, (3, 1))
    t = 2.0 * math.pi * hue
    k = np.full(3, 1.0 / math.sqrt(3.0))
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    rot = np.eye(3) + math.sin(t) * cross + (1.0 - math.cos(t)) * cross @ cross
    return np.asarray(val * rot @ m_sat, dtype=np.float64)


def hsv_jitter(image: ImageArray, *, hue: float, sat: float, val: float) -> ImageArray:
    """Shift hue by ``hue`` turns (e.g. ``0.01``) and scale saturation and value by ``sat``/``val``.

    ``(H, W, 3)`` uint8 RGB in and out, through one 3x3 colour matrix (:func:`color_matrix`,
    applied by Pillow in C, ~6x faster than a round trip through HSV). The value gain is exact
    HSV; the hue rotation equals the HSV hue shift for multiples of 1/3 turn and is close for
    the small shifts used in training; saturation is scaled about luma rather than the
    channel maximum. ``hue=0, sat=1, val=1`` returns the input unchanged.
    """
    if hue == 0 and sat == 1 and val == 1:
        return image
    m = color_matrix(hue=hue, sat=sat, val=val)
    m12 = tuple(float(v) for row in np.concatenate([m, np.zeros((3, 1))], axis=1) for v in row)
    return np.asarray(Image.fromarray(image).convert("RGB", m12))


# ----------------------------------------------------------------------------- affine
def random_affine(
    image: ImageArray,
    boxes: FloatArray,
    cls: IntArray,
    *,
    matrix: FloatArray,
    out_shape: tuple[int, int],
    min_size: float = 2.0,
    min_visibility: float = 0.1,
    max_aspect: float = 20.0,
    fill: int = FILL,
) -> Sample:
    """Warp an image and its boxes by ``matrix`` (see :func:`affine_matrix`) into ``out_shape``.

    Boxes are moved by their 4 corners, clipped to the output, and dropped (with their class)
    when :func:`keep_boxes` rejects them. The name says where its parameters usually come
    from; the function itself is deterministic.
    """
    out = warp_affine(image, matrix, out_shape, fill=fill)
    moved = transform_boxes(boxes, matrix)
    clipped = clip_boxes(moved, out_shape)
    keep = keep_boxes(
        moved, clipped, min_size=min_size, min_visibility=min_visibility, max_aspect=max_aspect
    )
    return out, clipped[keep], np.asarray(cls)[keep]


# ----------------------------------------------------------------------------- mosaic / mixup
def mosaic4(
    tiles: list[Sample],
    *,
    size: int,
    center: tuple[int, int],
    region: tuple[int, int, int, int] | None = None,
    fill: int = FILL,
) -> Sample:
    """Place four samples around ``center = (xc, yc)`` on a ``(2*size, 2*size)`` canvas.

    Tile 0 ends at the centre from the top-left, tile 1 from the top-right, tile 2 from the
    bottom-left, tile 3 from the bottom-right; each is cut only by the canvas edge, so tiles
    never overlap. Boxes are shifted with their pixels, clipped to their tile's visible part
    and dropped when less than 10% (or under 2 px) remains. Tiles are usually resized so their
    long side is ``size``; follow with :func:`random_affine` to crop/warp to ``size``.

    ``region = (x1, y1, x2, y2)`` (integer canvas pixels, may reach outside it) returns only
    that window of the canvas, boxes in its coordinates: the part a later crop will keep.
    """
    s2 = 2 * size
    xc, yc = center
    rx1, ry1, rx2, ry2 = region if region is not None else (0, 0, s2, s2)
    canvas = np.full((ry2 - ry1, rx2 - rx1, 3), fill, dtype=np.uint8)
    out_b, out_c = [], []
    for i, (img, boxes, cls) in enumerate(tiles[:4]):
        h, w = img.shape[:2]
        x0 = xc - w if i in (0, 2) else xc  # tile's top-left on the canvas (may be negative)
        y0 = yc - h if i in (0, 1) else yc
        ax1, ay1 = max(x0, 0), max(y0, 0)
        ax2, ay2 = min(x0 + w, s2), min(y0 + h, s2)
        if ax2 <= ax1 or ay2 <= ay1:
            continue
        px1, py1, px2, py2 = max(ax1, rx1), max(ay1, ry1), min(ax2, rx2), min(ay2, ry2)
        if px2 > px1 and py2 > py1:
            canvas[py1 - ry1 : py2 - ry1, px1 - rx1 : px2 - rx1] = img[
                py1 - y0 : py2 - y0, px1 - x0 : px2 - x0
            ]
        moved = as_boxes(boxes) + np.array([x0, y0, x0, y0], dtype=np.float64)
        clipped = moved.copy()
        np.clip(clipped[:, 0::2], ax1, ax2, out=clipped[:, 0::2])
        np.clip(clipped[:, 1::2], ay1, ay2, out=clipped[:, 1::2])
        keep = keep_boxes(moved, clipped, max_aspect=np.inf)
        out_b.append(clipped[keep] - np.array([rx1, ry1, rx1, ry1], dtype=np.float64))
        out_c.append(np.asarray(cls, dtype=np.int64)[keep])
    boxes_all = np.concatenate(out_b) if out_b else np.zeros((0, 4))
    cls_all = np.concatenate(out_c) if out_c else np.zeros(0, dtype=np.int64)
    return canvas, boxes_all, cls_all


def mixup(a: Sample, b: Sample, *, ratio: float) -> Sample:
    """Blend two same-shape samples: ``ratio * a + (1 - ratio) * b``; boxes of both are kept."""
    img = a[0].astype(np.float32) * ratio + b[0].astype(np.float32) * (1.0 - ratio)
    out = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out, np.concatenate([as_boxes(a[1]), as_boxes(b[1])]), np.concatenate([a[2], b[2]])


# ----------------------------------------------------------------------------- random wrappers
@dataclass(frozen=True)
class RandomHSV:
    """Hue shift ``U(-h, h)`` turns, saturation and value gains ``U(1-s, 1+s)``, ``U(1-v, 1+v)``."""

    h: float = 0.015
    s: float = 0.7
    v: float = 0.4

    def __call__(self, image: ImageArray, rng: np.random.Generator) -> ImageArray:
        if not (self.h or self.s or self.v):
            return image
        dh, ds, dv = rng.uniform(-1.0, 1.0, 3) * (self.h, self.s, self.v)
        return hsv_jitter(image, hue=float(dh), sat=1.0 + float(ds), val=1.0 + float(dv))


@dataclass(frozen=True)
class RandomFlip:
    """Left-right flip with probability ``lr``, up-down flip with probability ``ud``."""

    lr: float = 0.5
    ud: float = 0.0

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        img, b, c = sample
        if self.ud and rng.random() < self.ud:
            img, b, c = vflip(img, b, c)
        if self.lr and rng.random() < self.lr:
            img, b, c = hflip(img, b, c)
        return img, b, c


@dataclass(frozen=True)
class RandomAffine:
    """Rotation ``U(-degrees, degrees)``, scale ``U(1-scale, 1+scale)``, shear ``U(-shear, shear)``
    degrees per axis, and the output centre moved by ``U(-translate, translate)`` x output size.

    The input centre (the canvas centre for a mosaic) is mapped to the (translated) output
    centre, so a ``(2S, 2S)`` mosaic canvas warped to ``(S, S)`` is a random crop of it.
    """

    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0

    def matrix(
        self, in_shape: tuple[int, int], out_shape: tuple[int, int], rng: np.random.Generator
    ) -> FloatArray:
        """Draw a ``(3, 3)`` input->output matrix; shapes are ``(h, w)``."""
        deg, sc, shx, shy, tx, ty = rng.uniform(-1.0, 1.0, 6)
        oh, ow = out_shape
        m = affine_matrix(
            in_center=(in_shape[1] / 2.0, in_shape[0] / 2.0),
            out_center=(ow * (0.5 + self.translate * tx), oh * (0.5 + self.translate * ty)),
            degrees=float(deg) * self.degrees,
            scale=1.0 + float(sc) * self.scale,
            shear=(float(shx) * self.shear, float(shy) * self.shear),
        )
        if self.degrees or self.shear:
            return m
        # No rotation or shear: snap to the nearest integer input box (scale changes by at
        # most half a pixel over the box) so the warp is a fast antialiased crop-and-resize.
        inv = np.linalg.inv(m)
        x1, y1 = inv[:2, 2]
        x2, y2 = inv[:2, :2] @ [ow, oh] + inv[:2, 2]
        r = [round(x1), round(y1), round(x2), round(y2)]
        box = (r[0], r[1], max(r[2], r[0] + 1), max(r[3], r[1] + 1))
        return crop_matrix(box, out_shape)

    def __call__(
        self, sample: Sample, out_shape: tuple[int, int], rng: np.random.Generator
    ) -> Sample:
        img, b, c = sample
        m = self.matrix(img.shape[:2], out_shape, rng)
        return random_affine(img, b, c, matrix=m, out_shape=out_shape)
