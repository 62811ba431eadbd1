"""Anchor boxes from a dataset's box sizes: Darknet's ``detector calc_anchors``.

The algorithm (AlexeyAB/darknet ``calc_anchors`` + ``do_kmeans``), written from its
description:

* every box contributes ``(w * net_w, h * net_h)``: its normalized width and height scaled to
  the network input (no letterbox correction, as Darknet); with ``letter_box=True`` its pixel
  size times ``min(net_w / image_w, net_h / image_h)`` instead, the size it has in a
  letterboxed input (``letter_box=1`` cfgs, and detforge's own training);
* k-means with the distance ``1 - IoU`` of two boxes sharing a corner
  (``IoU = min(w) * min(h) / (w1 h1 + w2 h2 - min(w) * min(h))``);
* the initial centres are ``k`` distinct boxes drawn at random;
* assignment: the closest centre (the first one on ties); update: each centre becomes the
  plain mean of its boxes, a centre without boxes keeps its old value; at most 1,000 rounds,
  stopping when no assignment changes;
* the centres are sorted by area, smallest first; the reported mean IoU is the mean over all
  boxes of the best IoU with any centre.

Darknet seeds its random draw with the clock; here the draw comes from ``seed``, so the same
boxes and seed give the same anchors. Pure numpy, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset

MAX_ROUNDS = 1000


@dataclass(frozen=True)
class AnchorResult:
    """``anchors`` ``(k, 2)`` float64 ``(w, h)`` in input pixels, sorted by area (ascending);
    ``mean_iou`` in ``[0, 1]``; ``rounds`` k-means rounds run; ``boxes`` how many sizes;
    ``left_out`` how many sizes were not used (not finite, no area, or larger than the input:
    labels ``detforge check`` calls errors)."""

    anchors: NDArray[np.float64]
    mean_iou: float
    rounds: int
    boxes: int
    left_out: int = 0

    def darknet_text(self) -> str:
        """The ``anchors=`` value as Darknet prints it: ``w,h`` pairs joined by ``", "``,
        rounded to whole pixels (``%3.0f``)."""
        return ", ".join(f"{w:.0f},{h:.0f}" for w, h in self.anchors)


def wh_iou(wh: ArrayLike, centers: ArrayLike) -> NDArray[np.float64]:
    """IoU of boxes ``wh`` ``(N, 2)`` and ``centers`` ``(K, 2)`` (both ``(w, h)``, same units)
    placed at a common corner: ``(N, K)``."""
    a = np.asarray(wh, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    inter = np.minimum(a[:, None, 0], c[None, :, 0]) * np.minimum(a[:, None, 1], c[None, :, 1])
    union = (a[:, 0] * a[:, 1])[:, None] + (c[:, 0] * c[:, 1])[None, :] - inter
    return np.asarray(inter / union, dtype=np.float64)


def mean_best_iou(wh: ArrayLike, anchors: ArrayLike) -> float:
    """Mean over the boxes ``wh`` ``(N, 2)`` of the best IoU with any anchor ``(K, 2)``."""
    iou = wh_iou(wh, anchors)
    return float(iou.max(axis=1).mean()) if len(iou) else 0.0


def usable_sizes(
    wh: ArrayLike, limit: tuple[float, float] | None = None
) -> tuple[NDArray[np.float64], int]:
    """The box sizes ``wh`` ``(N, 2)`` anchors can be fitted to, and how many were left out:
    not finite, no area in float64 (their IoUs would be 0 / 0), or with ``limit`` (the input's
    ``(w, h)``) larger than the input."""
    data = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        keep = np.isfinite(data).all(axis=1) & (data > 0).all(axis=1)
        keep &= data[:, 0] * data[:, 1] > 0
        if limit is not None:
            keep &= (data[:, 0] <= limit[0]) & (data[:, 1] <= limit[1])
    return data[keep], int((~keep).sum())


def kmeans_anchors(
    wh: ArrayLike,
    k: int,
    *,
    seed: int = 0,
    init: ArrayLike | None = None,
    limit: tuple[float, float] | None = None,
) -> AnchorResult:
    """Darknet's IoU k-means of the box sizes ``wh`` ``(N, 2)`` (input pixels) into ``k``
    anchors. ``init`` ``(k, 2)`` replaces the random initial centres (for tests). Sizes
    :func:`usable_sizes` refuses (``limit``: the input's ``(w, h)``) are left out and
    counted."""
    if k < 1:
        raise DetforgeError(f"the number of anchors must be at least 1, got {k}")
    data, left_out = usable_sizes(wh, limit)
    if len(data) < k:
        raise DetforgeError(
            f"{len(data)} boxes with a positive size cannot make {k} anchors: "
            "use fewer anchors or more labelled boxes"
        )
    if init is None:
        rng = np.random.default_rng(seed)
        centers = data[rng.permutation(len(data))[:k]].copy()
    else:
        centers = np.array(init, dtype=np.float64).reshape(k, 2)
    assign = np.zeros(len(data), dtype=np.int64)
    if k == 1:
        centers = _update(data, assign, centers)
    rounds = 0
    while rounds < MAX_ROUNDS:
        new = np.argmax(wh_iou(data, centers), axis=1)  # argmax: first of equals, as Darknet
        if np.array_equal(new, assign):
            break
        assign = new
        centers = _update(data, assign, centers)
        rounds += 1
    order = np.argsort(centers[:, 0] * centers[:, 1], kind="stable")
    centers = centers[order]
    return AnchorResult(centers, mean_best_iou(data, centers), rounds, len(data), left_out)


def _update(
    data: NDArray[np.float64], assign: NDArray[np.int64], old: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Each centre = mean of its boxes; a centre without boxes keeps its old value."""
    k = len(old)
    counts = np.bincount(assign, minlength=k).astype(np.float64)
    sums = np.zeros_like(old)
    np.add.at(sums, assign, data)
    out = old.copy()
    has = counts > 0
    out[has] = sums[has] / counts[has, None]
    return out


def box_sizes(norm_wh: ArrayLike, width: int, height: int) -> NDArray[np.float64]:
    """Normalized ``(w, h)`` ``(N, 2)`` scaled to a ``width`` x ``height`` network input."""
    wh = np.asarray(norm_wh, dtype=np.float64).reshape(-1, 2)
    return np.asarray(wh * np.array([float(width), float(height)]), dtype=np.float64)


def dataset_box_sizes(
    ds: Dataset, width: int, height: int, *, letter_box: bool = False
) -> NDArray[np.float64]:
    """The box sizes ``(N, 2)`` Darknet clusters: every box of the ``train`` split (every box
    when the dataset has no ``train`` split), normalized ``(w, h)`` times the input size, or
    with ``letter_box`` the pixel size times the letterbox scale of its image. Normalized
    coordinates without ``letter_box`` need no image sizes; otherwise they must be known."""
    from detforge.data.boxes import BoxFormat

    if "train" in ds.splits():
        ds = ds.split("train")
    if not letter_box:
        return box_sizes(ds.coords_as(BoxFormat.CXCYWH_NORM)[:, 2:4], width, height)
    wh = ds.coords_as(BoxFormat.XYWH_PIXEL)[:, 2:4]
    iw = ds.images.width[ds.boxes.image].astype(np.float64)
    ih = ds.images.height[ds.boxes.image].astype(np.float64)
    scale = np.minimum(width / iw, height / ih)
    return np.asarray(wh * scale[:, None], dtype=np.float64)


def anchors_for_dataset(
    ds: Dataset, k: int, width: int, height: int, *, seed: int = 0, letter_box: bool = False
) -> AnchorResult:
    """:func:`kmeans_anchors` of :func:`dataset_box_sizes` (image sizes read when the boxes are
    in pixels or ``letter_box`` needs them)."""
    from detforge.data.boxes import BoxFormat

    if letter_box or not BoxFormat(ds.boxes.format).normalized:
        from detforge.formats.common import ensure_sizes

        ds = ensure_sizes(ds)
    sizes = dataset_box_sizes(ds, width, height, letter_box=letter_box)
    return kmeans_anchors(sizes, k, seed=seed, limit=(float(width), float(height)))


def parse_anchor_list(text: str, count: int) -> str:
    """A user's ``w,h, w,h, ...`` anchor list (``count`` pairs of finite positive numbers) in
    Darknet's ``anchors=`` spelling; DetforgeError naming what is wrong otherwise."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        values = []
    if len(values) != 2 * count or not all(math.isfinite(v) and v > 0 for v in values):
        raise DetforgeError(
            f"--anchors expects 'auto' or {count} positive w,h pairs (the cfg's num={count}), "
            f"got {text!r}"
        )
    return ", ".join(f"{values[i]:g},{values[i + 1]:g}" for i in range(0, len(values), 2))
