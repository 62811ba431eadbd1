"""Pictures of a dataset: ground truth drawn on each image, or ground truth beside predictions.

:func:`render_dataset` yields one Pillow picture per image (lazily: a big dataset never sits in
memory); ``detforge show`` saves them and :func:`detforge.predict.draw.contact_sheet` tiles
them. Box coordinates are converted with each image's *decoded* size, so a dataset whose
recorded sizes are wrong still draws where the labels point.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat, convert_boxes
from detforge.data.dataset import Dataset
from detforge.data.images import load_image
from detforge.errors import DetforgeError
from detforge.formats.common import unique_file_names
from detforge.predict.draw import draw_boxes, draw_comparison, match_boxes


@dataclass(frozen=True, eq=False)
class Rendered:
    """One drawn picture: ``row`` of the dataset, its ``name`` (unique file stem), the Pillow
    ``image`` and a short ``caption`` (file name and box counts); ``error`` is set instead of
    ``image`` when the image file could not be read."""

    row: int
    name: str
    image: Any
    caption: str
    error: str | None = None


def _slices(image_col: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """``(n + 1,)`` offsets: boxes of image ``i`` are ``starts[i]:starts[i+1]`` (sorted column)."""
    return np.searchsorted(image_col, np.arange(n + 1)).astype(np.int64)


def _xyxy(ds: Dataset, sl: slice, w: int, h: int) -> NDArray[np.float64]:
    return convert_boxes(
        ds.boxes.coords[sl], ds.boxes.format, BoxFormat.XYXY_PIXEL, widths=w, heights=h
    )


def picture_names(gt: Dataset) -> list[str]:
    """The name (no extension) of each image's picture, as every writer names files after
    images: unique stems that fit NAME_MAX (:func:`unique_file_names`)."""
    return [os.path.splitext(f)[0] for f in unique_file_names([str(p) for p in gt.images.path])]


def render_dataset(
    gt: Dataset,
    pred: Dataset | None = None,
    *,
    rows: Sequence[int] | None = None,
    conf: float = 0.25,
    iou: float = 0.5,
    line_width: int | None = None,
    names: Sequence[str] | None = None,
) -> Iterator[Rendered]:
    """Draw the images ``rows`` of ``gt`` (default: all); ``names``: :func:`picture_names`
    of ``gt`` when the caller has them already.

    Without ``pred``: ground-truth boxes in class colours with class names. With ``pred`` (a
    Dataset on ``gt``'s image table, as :func:`detforge.eval.read_predictions` returns, boxes
    carrying ``score``): ground truth beside the predictions scoring ``>= conf``, coloured as
    matches (TP), misses (FN) and false positives (FP) at IoU ``>= iou``.
    """
    if pred is not None and pred.images is not gt.images and pred.num_images != gt.num_images:
        raise DetforgeError("predictions are not aligned to the dataset's images")
    n = gt.num_images
    names = picture_names(gt) if names is None else names
    g_at = _slices(gt.boxes.image, n)
    p_at = _slices(pred.boxes.image, n) if pred is not None else None
    for i in range(n) if rows is None else rows:
        path = str(gt.images.path[i])
        try:
            arr = load_image(path).image
        except DetforgeError as exc:
            yield Rendered(i, names[i], None, Path(path).name, error=str(exc))
            continue
        h, w = arr.shape[:2]
        gs = slice(int(g_at[i]), int(g_at[i + 1]))
        gb, gc = _xyxy(gt, gs, w, h), gt.boxes.cls[gs]
        if pred is None or p_at is None:
            im = draw_boxes(arr, gb, gc, class_names=gt.class_names, line_width=line_width)
            caption = f"{Path(path).name}  {len(gb)} boxes"
        else:
            ps = slice(int(p_at[i]), int(p_at[i + 1]))
            keep = pred.boxes.score[ps] >= conf
            pb, pc = _xyxy(pred, ps, w, h)[keep], pred.boxes.cls[ps][keep]
            sc = pred.boxes.score[ps][keep]
            im = draw_comparison(
                arr, gb, gc, pb, pc, sc, class_names=gt.class_names, iou=iou,
                line_width=line_width,
            )  # fmt: skip
            tp, found = match_boxes(gb, gc, pb, pc, sc, iou=iou)
            caption = (
                f"{Path(path).name}  TP {int(tp.sum())} FN {int((~found).sum())} "
                f"FP {int((~tp).sum())}"
            )
        yield Rendered(i, names[i], im, caption)
