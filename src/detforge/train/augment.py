"""Training augmentations as pure functions on ``(image, boxes, cls)``, plus thin random wrappers.

Conventions shared by every function here:

* ``image`` is ``(H, W, 3)`` uint8 RGB (a numpy array; never modified in place).
* ``boxes`` is ``(K, 4)`` float64 ``xyxy`` in *continuous* pixels of ``image``: the image spans
  ``[0, W] x [0, H]`` and pixel ``(i, j)`` covers ``[j, j+1] x [i, i+1]``.
* ``cls`` is ``(K,)`` int64 class ids, kept aligned with ``boxes`` when boxes are dropped.

The pure functions take every random quantity as an argument, so they are deterministic and
testable; the ``Random*`` classes hold hyper-parameters, draw those quantities from a
``numpy.random.Generator`` and call the pure functions. Geometric warps use one Pillow affine
transform (C code, bilinear) per image, which measured faster than ``torch.grid_sample`` on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from PIL import Image

ImageArray = NDArray[np.uint8]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Sample = tuple[ImageArray, FloatArray, IntArray]
"""``(image (H, W, 3) uint8, boxes (K, 4) float64 xyxy pixels, cls (K,) int64)``."""

FILL = 114
"""Grey level of padding and of areas a warp uncovers (the usual YOLO letterbox colour)."""


def _boxes(boxes: FloatArray | None) -> FloatArray:
    if boxes is None:
        return np.zeros((0, 4), dtype=np.float64)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def resize(image: ImageArray, size: tuple[int, int]) -> ImageArray:
    """Resize ``image`` to ``size = (w, h)`` pixels with Pillow's antialiased bilinear filter."""
    h, w = image.shape[:2]
    if (w, h) == tuple(size):
        return image
    im = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(im)


# ----------------------------------------------------------------------------- letterbox
class Letterboxed(NamedTuple):
    """Result of :func:`letterbox`: the padded image, mapped boxes and the mapping itself.

    A point ``(x, y)`` of the source image lands at ``(x * ratio[0] + pad[0],
    y * ratio[1] + pad[1])``; :func:`unletterbox_boxes` inverts it.
    """

    image: ImageArray
    boxes: FloatArray
    ratio: tuple[float, float]
    pad: tuple[float, float]


def letterbox(
    image: ImageArray,
    boxes: FloatArray | None = None,
    *,
    shape: int | tuple[int, int],
    scaleup: bool = True,
    center: bool = True,
    auto: bool = False,
    stride: int = 32,
    fill: int = FILL,
) -> Letterboxed:
    """Resize ``image`` keeping its aspect ratio to fit ``shape = (h, w)`` (or a square), and pad.

    ``scaleup=False`` never enlarges (validation on already-resized images). ``auto=True``
    pads only to the next multiple of ``stride`` instead of the full ``shape`` (predict on
    rectangles). ``center=False`` puts the image at the top-left. ``boxes`` ``(K, 4)`` xyxy in
    source pixels come back in output pixels; ``ratio`` is the per-axis scale actually applied
    (after rounding the resized size to whole pixels) and ``pad`` the left/top offset in pixels.
    """
    out_h, out_w = (shape, shape) if isinstance(shape, int) else shape
    h, w = image.shape[:2]
    r = min(out_h / h, out_w / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = max(1, round(w * r)), max(1, round(h * r))
    if auto:
        out_w = math.ceil(new_w / stride) * stride
        out_h = math.ceil(new_h / stride) * stride
    resized = resize(image, (new_w, new_h))
    left = (out_w - new_w) // 2 if center else 0
    top = (out_h - new_h) // 2 if center else 0
    if (new_w, new_h) == (out_w, out_h):
        canvas = np.ascontiguousarray(resized)
    else:
        canvas = np.full((out_h, out_w, 3), fill, dtype=np.uint8)
        canvas[top : top + new_h, left : left + new_w] = resized
    ratio = (new_w / w, new_h / h)
    pad = (float(left), float(top))
    out = _boxes(boxes) * np.array([ratio[0], ratio[1]] * 2) + np.array([pad[0], pad[1]] * 2)
    return Letterboxed(canvas, out, ratio, pad)


def unletterbox_boxes(
    boxes: FloatArray,
    ratio: tuple[float, float],
    pad: tuple[float, float],
    orig_shape: tuple[int, int] | None = None,
) -> FloatArray:
    """Map ``(K, 4)`` xyxy boxes from letterboxed pixels back to source pixels.

    ``orig_shape = (h, w)`` of the source clips the result to the image when given.
    """
    b: FloatArray = (_boxes(boxes) - np.array([pad[0], pad[1]] * 2)) / np.array(
        [ratio[0], ratio[1]] * 2
    )
    if orig_shape is not None:
        h, w = orig_shape
        b = clip_boxes(b, (h, w))
    return b


# ----------------------------------------------------------------------------- boxes
def clip_boxes(boxes: FloatArray, shape: tuple[int, int]) -> FloatArray:
    """Clip ``(K, 4)`` xyxy boxes to an image of ``shape = (h, w)``."""
    h, w = shape
    b = _boxes(boxes).copy()
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


# ----------------------------------------------------------------------------- flips / colour
def hflip(image: ImageArray, boxes: FloatArray, cls: IntArray) -> Sample:
    """Mirror left-right: ``x -> W - x``."""
    w = image.shape[1]
    b = _boxes(boxes).copy()
    b[:, [0, 2]] = w - b[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), b, cls


def vflip(image: ImageArray, boxes: FloatArray, cls: IntArray) -> Sample:
    """Mirror up-down: ``y -> H - y``."""
    h = image.shape[0]
    b = _boxes(boxes).copy()
    b[:, [1, 3]] = h - b[:, [3, 1]]
    return np.ascontiguousarray(image[::-1]), b, cls


def hsv_jitter(image: ImageArray, *, hue: float, sat: float, val: float) -> ImageArray:
    """Shift hue by ``hue`` turns (e.g. ``0.01``) and scale saturation and value by ``sat``/``val``.

    ``(H, W, 3)`` uint8 RGB in and out. Works through Pillow's 8-bit HSV (hue 0-255 per turn)
    with one lookup table per channel; ``hue=0, sat=1, val=1`` returns the input unchanged.
    """
    if hue == 0 and sat == 1 and val == 1:
        return image
    x = np.arange(256, dtype=np.float64)
    lut_h = np.mod(np.round(x + hue * 256.0), 256).astype(np.uint8)
    lut_s = np.clip(np.round(x * sat), 0, 255).astype(np.uint8)
    lut_v = np.clip(np.round(x * val), 0, 255).astype(np.uint8)
    hsv = Image.fromarray(image).convert("HSV")
    bands = [
        b.point(lut.tolist()) for b, lut in zip(hsv.split(), (lut_h, lut_s, lut_v), strict=True)
    ]
    return np.asarray(Image.merge("HSV", bands).convert("RGB"))


# ----------------------------------------------------------------------------- affine
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
    b = _boxes(boxes)
    if not len(b):
        return b.copy()
    corners = b[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)  # (K, 4 corners, xy)
    pts = corners @ matrix[:2, :2].T + matrix[:2, 2]
    return np.concatenate([pts.min(1), pts.max(1)], axis=1)


def warp_affine(
    image: ImageArray, matrix: FloatArray, out_shape: tuple[int, int], *, fill: int = FILL
) -> ImageArray:
    """Warp ``image`` by ``matrix`` (input -> output pixels) into ``out_shape = (h, w)``.

    Bilinear sampling at pixel centres in continuous coordinates; uncovered area is ``fill``.
    """
    h, w = out_shape
    if np.allclose(matrix, np.eye(3)) and image.shape[:2] == (h, w):
        return image
    inv = np.linalg.inv(matrix)[:2].reshape(-1)
    out = Image.fromarray(image).transform(
        (w, h),
        Image.Transform.AFFINE,
        tuple(float(v) for v in inv),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(fill, fill, fill),
    )
    return np.asarray(out)


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
    fill: int = FILL,
) -> Sample:
    """Place four samples around ``center = (xc, yc)`` on a ``(2*size, 2*size)`` canvas.

    Tile 0 ends at the centre from the top-left, tile 1 from the top-right, tile 2 from the
    bottom-left, tile 3 from the bottom-right; each is cut only by the canvas edge, so tiles
    never overlap. Boxes are shifted with their pixels, clipped to their tile's visible part
    and dropped when less than 10% (or under 2 px) remains. Tiles are usually resized so their
    long side is ``size``; follow with :func:`random_affine` to crop/warp to ``size``.
    """
    s2 = 2 * size
    xc, yc = center
    canvas = np.full((s2, s2, 3), fill, dtype=np.uint8)
    out_b, out_c = [], []
    for i, (img, boxes, cls) in enumerate(tiles[:4]):
        h, w = img.shape[:2]
        x0 = xc - w if i in (0, 2) else xc  # tile's top-left on the canvas (may be negative)
        y0 = yc - h if i in (0, 1) else yc
        ax1, ay1 = max(x0, 0), max(y0, 0)
        ax2, ay2 = min(x0 + w, s2), min(y0 + h, s2)
        if ax2 <= ax1 or ay2 <= ay1:
            continue
        canvas[ay1:ay2, ax1:ax2] = img[ay1 - y0 : ay2 - y0, ax1 - x0 : ax2 - x0]
        moved = _boxes(boxes) + np.array([x0, y0, x0, y0], dtype=np.float64)
        clipped = moved.copy()
        np.clip(clipped[:, 0::2], ax1, ax2, out=clipped[:, 0::2])
        np.clip(clipped[:, 1::2], ay1, ay2, out=clipped[:, 1::2])
        keep = keep_boxes(moved, clipped, max_aspect=np.inf)
        out_b.append(clipped[keep])
        out_c.append(np.asarray(cls, dtype=np.int64)[keep])
    boxes_all = np.concatenate(out_b) if out_b else np.zeros((0, 4))
    cls_all = np.concatenate(out_c) if out_c else np.zeros(0, dtype=np.int64)
    return canvas, boxes_all, cls_all


def mixup(a: Sample, b: Sample, *, ratio: float) -> Sample:
    """Blend two same-shape samples: ``ratio * a + (1 - ratio) * b``; boxes of both are kept."""
    img = a[0].astype(np.float32) * ratio + b[0].astype(np.float32) * (1.0 - ratio)
    out = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out, np.concatenate([_boxes(a[1]), _boxes(b[1])]), np.concatenate([a[2], b[2]])


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
        return affine_matrix(
            in_center=(in_shape[1] / 2.0, in_shape[0] / 2.0),
            out_center=(ow * (0.5 + self.translate * tx), oh * (0.5 + self.translate * ty)),
            degrees=float(deg) * self.degrees,
            scale=1.0 + float(sc) * self.scale,
            shear=(float(shx) * self.shear, float(shy) * self.shear),
        )

    def __call__(
        self, sample: Sample, out_shape: tuple[int, int], rng: np.random.Generator
    ) -> Sample:
        img, b, c = sample
        m = self.matrix(img.shape[:2], out_shape, rng)
        return random_affine(img, b, c, matrix=m, out_shape=out_shape)
