"""The letterbox: how an image becomes a network input, and how boxes come back.

This module is the one home of the input geometry every command shares (training's
validation, ``val``, ``map``, ``predict``, the Python API, ONNX export and its runner):

* :func:`fit_size` -- the size an image is resized to so it fits an input shape, aspect kept;
* :func:`letterbox` -- resize to that size (antialiased bilinear, :func:`resize`) and centre it
  on a canvas of the input shape filled with grey ``FILL = 114``;
* :func:`unletterbox_boxes` -- the one inverse: boxes in input pixels back to original-image
  pixels (the role of torchvision's ``transform.resize_boxes`` or detectron2's
  ``detector_postprocess``).

:class:`InputRule` names the rule with its input shape; ONNX exports record it in their
metadata (:meth:`InputRule.to_meta`) and the ONNX runner reads it back.

Conventions: images ``(H, W, 3)`` uint8 RGB; shapes ``(h, w)``; boxes ``(K, 4)`` float64
``xyxy`` in continuous pixels (the image spans ``[0, W] x [0, H]``). A mapping ``ratio_pad =
((rw, rh), (left, top))`` takes original pixels to input pixels: ``input = original * r + pad``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError

ImageArray = NDArray[np.uint8]
FloatArray = NDArray[np.float64]
RatioPad = tuple[tuple[float, float], tuple[float, float]]
"""``((rw, rh), (left, top))``: input pixel = original pixel * r + pad, per axis."""

FILL = 114
"""Grey level of letterbox padding and of areas a warp uncovers (the usual YOLO colour)."""

STRIDE = 32
"""The detector's largest stride: input sides are multiples of it."""

MAX_INPUT = 8192
"""Largest network input side, in pixels (``--imgsz`` of every command, a Darknet cfg's
``width``/``height``): one 8192x8192 float32 input is already 805 MB."""


def check_input_size(height: int, width: int, *, name: str = "the input size") -> None:
    """One line naming ``name`` unless both sides are multiples of :data:`STRIDE` from
    ``STRIDE`` to :data:`MAX_INPUT` (the rule of ``--imgsz`` in train, predict, val, export
    and of :class:`InputRule`)."""
    for side in (height, width):
        if side < STRIDE or side % STRIDE or side > MAX_INPUT:
            got = f"{height}" if height == width else f"{height}x{width}"
            raise DetforgeError(
                f"{name} must be a multiple of {STRIDE} from {STRIDE} to {MAX_INPUT} "
                f"(e.g. 416, 640), got {got}"
            )


def as_boxes(boxes: Any) -> FloatArray:
    """``(K, 4)`` float64 boxes from ``None`` (no boxes) or anything array-like."""
    if boxes is None:
        return np.zeros((0, 4), dtype=np.float64)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def resize(image: ImageArray, size: tuple[int, int]) -> ImageArray:
    """Resize ``(H, W, 3)`` uint8 ``image`` to ``size = (w, h)`` pixels, bilinear, antialiased
    when shrinking (PyTorch's uint8 kernel: the same filter as Pillow's, several times faster).
    Returns ``image`` itself when it already has that size."""
    h, w = image.shape[:2]
    if (w, h) == tuple(size):
        return image
    import warnings

    import torch

    with warnings.catch_warnings():  # read-only cache views: the kernel only reads them
        warnings.simplefilter("ignore", UserWarning)
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    y = torch.nn.functional.interpolate(
        x, size=(size[1], size[0]), mode="bilinear", antialias=True, align_corners=False
    )
    return np.ascontiguousarray(y[0].permute(1, 2, 0).numpy())


def fit_size(shape: tuple[int, int], into: int | tuple[int, int]) -> tuple[int, int]:
    """``(h, w)`` of an image of ``shape = (h0, w0)`` scaled by ``min(H / h0, W / w0)`` to fit
    ``into = (H, W)`` (an int is a square), rounded to whole pixels (at least 1 each).

    One side equals its bound exactly and the other stays within its bound, so an image
    already of this size fits ``into`` with a scale of exactly 1.
    """
    big_h, big_w = (into, into) if isinstance(into, int) else into
    h0, w0 = int(shape[0]), int(shape[1])
    r = min(big_h / h0, big_w / w0)
    return min(big_h, max(1, round(h0 * r))), min(big_w, max(1, round(w0 * r)))


class Letterboxed(NamedTuple):
    """Result of :func:`letterbox`: the input image, the boxes moved onto it and the mapping.

    ``ratio`` ``(rw, rh)`` and ``pad`` ``(left, top)`` map pixels of the image that was given to
    :func:`letterbox` (of shape ``source``) onto ``image``; :meth:`ratio_pad` maps from the
    full-resolution original when the given image had been decoded shrunk.
    """

    image: ImageArray
    boxes: FloatArray
    ratio: tuple[float, float]
    pad: tuple[float, float]
    source: tuple[int, int]

    def ratio_pad(self, orig_shape: tuple[int, int] | None = None) -> RatioPad:
        """The mapping from pixels of the original image of ``orig_shape = (h0, w0)`` (default:
        the image given to :func:`letterbox`) to input pixels."""
        h, w = self.source
        h0, w0 = orig_shape or self.source
        return (self.ratio[0] * w / w0, self.ratio[1] * h / h0), self.pad


def letterbox(
    image: ImageArray,
    boxes: Any = None,
    *,
    shape: int | tuple[int, int],
    fill: int = FILL,
) -> Letterboxed:
    """Resize ``image`` to :func:`fit_size` of ``shape = (H, W)`` (an int is a square), aspect
    kept, and centre it on an ``(H, W, 3)`` canvas of ``fill``; left/top padding is the floor
    of half the spare pixels. ``boxes`` ``(K, 4)`` xyxy in ``image`` pixels come back in input
    pixels. ``ratio`` is the scale actually applied per axis (after rounding to whole pixels).
    """
    out_h, out_w = (shape, shape) if isinstance(shape, int) else (int(shape[0]), int(shape[1]))
    h, w = image.shape[:2]
    new_h, new_w = fit_size((h, w), (out_h, out_w))
    resized = resize(image, (new_w, new_h))
    left, top = (out_w - new_w) // 2, (out_h - new_h) // 2
    if (new_w, new_h) == (out_w, out_h):
        canvas = np.ascontiguousarray(resized)
    else:
        canvas = np.full((out_h, out_w, 3), fill, dtype=np.uint8)
        canvas[top : top + new_h, left : left + new_w] = resized
    ratio = (new_w / w, new_h / h)
    pad = (float(left), float(top))
    moved = as_boxes(boxes) * np.array([ratio[0], ratio[1]] * 2) + np.array([pad[0], pad[1]] * 2)
    return Letterboxed(canvas, moved, ratio, pad, (int(h), int(w)))


def unletterbox_boxes(
    boxes: Any, ratio_pad: RatioPad, orig_shape: tuple[int, int] | None = None
) -> FloatArray:
    """Map ``(K, 4)`` xyxy boxes from input pixels back to original-image pixels: the inverse
    of ``ratio_pad`` (``original = (input - pad) / r``), as float64.

    ``orig_shape = (h0, w0)`` clips the result to ``[0, w0] x [0, h0]`` when given. Every
    command that reports boxes in image pixels (validation, ``val``, ``map``, ``predict``,
    the Python API, ONNX models) maps them back through this function.
    """
    (rw, rh), (left, top) = ratio_pad
    shift, scale = np.array([left, top, left, top]), np.array([rw, rh, rw, rh])
    out: FloatArray = (as_boxes(boxes) - shift) / scale
    if orig_shape is not None:
        h0, w0 = orig_shape
        np.clip(out[:, 0::2], 0.0, float(w0), out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, float(h0), out=out[:, 1::2])
    return out


@dataclass(frozen=True)
class InputRule:
    """How an image becomes a ``(height, width)`` network input: the rule shared by ``.pt``
    checkpoints and their ONNX exports, so both give the same detections at any batch size.

    Each image on its own is resized to :func:`fit_size` of ``(height, width)`` and centred on
    a canvas of that exact size filled with ``fill`` (:func:`letterbox`); image files are
    decoded straight to that fitted size (:func:`detforge.data.images.load_image` with
    ``fit``). A batch is a stack of such inputs, so no image depends on its batch mates.
    """

    height: int
    width: int
    fill: int = FILL

    def __post_init__(self) -> None:
        check_input_size(self.height, self.width)

    @classmethod
    def square(cls, size: int) -> InputRule:
        return cls(int(size), int(size))

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def apply(
        self, image: ImageArray, orig_shape: tuple[int, int] | None = None
    ) -> tuple[ImageArray, RatioPad]:
        """The network input ``(height, width, 3)`` for ``image`` and the mapping from the
        original's pixels (``orig_shape`` when ``image`` was decoded shrunk from it)."""
        lb = letterbox(image, shape=self.shape, fill=self.fill)
        return lb.image, lb.ratio_pad(orig_shape)

    def to_meta(self) -> dict[str, Any]:
        """The rule as plain JSON types (what an ONNX export stores under ``preprocess``)."""
        return {
            "resize": "letterbox",
            "shape": [self.height, self.width],
            "fill": self.fill,
            "align": "center",
            "scale": "fit",
            "filter": "bilinear-antialias",
            "input": "RGB float in [0, 1], (B, 3, H, W)",
        }

    @classmethod
    def from_meta(cls, meta: Any, *, path: str | None = None) -> InputRule:
        """Read :meth:`to_meta`'s dict back; a rule detforge does not know is a DetforgeError."""
        try:
            if meta.get("resize") != "letterbox" or meta.get("align", "center") != "center":
                raise ValueError(f"resize {meta.get('resize')!r}, align {meta.get('align')!r}")
            h, w = (int(v) for v in meta["shape"])
            return cls(h, w, int(meta.get("fill", FILL)))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DetforgeError(
                f"unknown preprocessing rule in the model's metadata ({exc}); re-export it "
                "with this version of detforge",
                path=path,
            ) from None
