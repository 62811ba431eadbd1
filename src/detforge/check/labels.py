"""Bulk checks of box values from any format (the rows come from :mod:`detforge.check.rows`).

Box value checks (:func:`check_boxes`) work on arrays, so every reader's output (COCO, VOC,
TFRecord via :class:`~detforge.data.dataset.Dataset`) is checked by the same code as Darknet
lines. Coordinates are ``CXCYWH_NORM``: centre x, centre y, width, height divided by the image
width/height.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detforge.check.duplicates import box_text, exact_duplicates, near_duplicates, where
from detforge.check.findings import Finding, finding
from detforge.check.rows import LabelRows
from detforge.data.validity import border_codes, wholly_outside


@dataclass(frozen=True, eq=False)
class BoxVerdict:
    """Per-row outcome of :func:`check_boxes`; every array has ``K`` rows."""

    bad: NDArray[np.bool_]
    """Rows with an error that makes them unusable (class or geometry); --fix drops them."""
    clip: NDArray[np.bool_]
    """Usable rows that extend past the border; --fix clips them to the image."""
    duplicate: NDArray[np.bool_]
    """Exact repeats of an earlier row of the same file; --fix drops them."""
    reason: NDArray[np.object_] | None = None
    """``(K,)`` the first finding code of each row (``""`` when none), for ``fixes.json``."""


# Over 80 lines on purpose: one vectorised pass over every box, one block per finding code.
def check_boxes(
    rows: LabelRows,
    paths: Sequence[str],
    *,
    num_classes: int | None,
    widths: NDArray[np.int64] | None = None,
    heights: NDArray[np.int64] | None = None,
    near_iou: float = 0.9,
    lines_are_boxes: bool = True,
) -> tuple[BoxVerdict, list[Finding]]:
    """Check class ids and CXCYWH_NORM coordinates of ``rows``.

    ``widths``/``heights`` are per *file* (``(F,)`` pixels, ``0`` = unknown) and enable the
    pixel checks (``box-subpixel`` and pixel amounts in messages). ``num_classes=None`` skips
    the range check (names unknown). ``line <= 0`` in ``rows`` means "no line" (non-text sources);
    ``lines_are_boxes=False`` says a line holds several boxes (a TFRecord record), so
    duplicates are described by their coordinates. ``near_iou``: same-class pairs of one file
    overlapping at least this much are ``box-near-duplicate`` (``0``: never).
    """
    out: list[Finding] = []
    k = len(rows)
    cls, c = rows.cls, rows.coords
    f_, l_ = rows.file, rows.line
    bad = np.zeros(k, dtype=bool)
    reason = np.full(k, "", dtype=object)

    def said(i: int, msg: str) -> str:
        # Boxes without a line (COCO, VOC) are named as their source writes them.
        return f"{rows.describe[i]}: {msg}" if rows.describe is not None else msg

    def emit(code: str, mask: NDArray[np.bool_], msg: str) -> None:
        reason[mask & (reason == "")] = code
        for i in np.flatnonzero(mask).tolist():
            text = said(i, msg.format(**_fmt(rows, i)))
            out.append(finding(code, text, **where(paths, f_, l_, i)))

    neg = cls < 0
    emit("class-negative", neg, "class id {cls} is negative; ids start at 0 (--fix drops the box)")
    frac = ~neg & (cls != np.floor(cls))
    emit(
        "class-not-integer",
        frac,
        "class id {cls_text} is not a whole number; fix the class id (--fix drops the box)",
    )
    text_only = ~neg & ~frac & ~rows.int_text
    emit(
        "class-not-integer",
        text_only,
        "class id {cls_text} is not written as an integer; Darknet reads the digits before "
        "the '.' as the class and shifts every other field (--fix writes it as {cls})",
    )
    nonint = frac
    bad |= neg | frac
    if num_classes is not None:
        oor = ~neg & ~nonint & (cls >= num_classes)
        emit(
            "class-out-of-range",
            oor,
            f"class id {{cls}} but there are only {num_classes} class names (ids 0.."
            f"{num_classes - 1}); add the missing names or fix the id (--fix drops the box)",
        )
        bad |= oor
    zero = (c[:, 2] <= 0) | (c[:, 3] <= 0)
    emit(
        "box-zero-size",
        zero,
        "box width/height is {w}/{h}; a box needs a positive size (--fix drops the box)",
    )
    border = border_codes(c)
    negc = border == "coord-negative"
    emit(
        "coord-negative",
        negc,
        "negative centre ({cx}, {cy}); coordinates are fractions of the image in [0, 1] "
        "(--fix drops the box)",
    )
    above = border == "coord-above-one"
    emit(
        "coord-above-one",
        above,
        "value above 1 in cx={cx} cy={cy} w={w} h={h}; Darknet coordinates are fractions of "
        "the image, not pixels (--fix drops the box)",
    )
    bad |= zero | negc | above
    x1, x2 = c[:, 0] - c[:, 2] / 2, c[:, 0] + c[:, 2] / 2
    y1, y2 = c[:, 1] - c[:, 3] / 2, c[:, 1] + c[:, 3] / 2
    over = np.maximum.reduce([-x1, x2 - 1, -y1, y2 - 1])
    clip = ~bad & (over > 1e-6)
    # Clipped boxes must keep a size; a box entirely outside the image is unusable.
    gone = clip & wholly_outside(np.stack([x1, y1, x2, y2], axis=1), 1.0, 1.0)
    emit(
        "box-outside-image",
        clip,
        "box reaches {over} of the image size past the border; detectors and TF clip or "
        "reject it (--fix clips it to the image)",
    )
    bad |= gone
    clip &= ~gone
    if widths is not None and heights is not None and k:
        w_px = c[:, 2] * widths[f_]
        h_px = c[:, 3] * heights[f_]
        known = (widths[f_] > 0) & (heights[f_] > 0)
        tiny = known & ~bad & ((w_px < 1) | (h_px < 1))
        reason[tiny & (reason == "")] = "box-subpixel"
        for i in np.flatnonzero(tiny).tolist():
            out.append(
                finding(
                    "box-subpixel",
                    said(
                        i,
                        f"box is {w_px[i]:.2f} x {h_px[i]:.2f} px, smaller than a pixel; it "
                        "cannot be learned and is likely a stray click (--fix drops it)",
                    ),
                    **where(paths, f_, l_, i),
                )
            )
        bad |= tiny
    dup = exact_duplicates(rows, ~bad)
    first = dup[1]
    for i in np.flatnonzero(dup[0]).tolist():
        ln = int(l_[first[i]])
        if ln > 0 and lines_are_boxes:
            msg = f"same box as line {ln}"
        else:
            msg = f"{box_text(rows, i)} appears twice"
        out.append(
            finding(
                "box-duplicate",
                msg + "; duplicates double the weight of one object (--fix drops it)",
                **where(paths, f_, l_, i),
            )
        )
    dup_mask = dup[0]
    if near_iou > 0:
        out.extend(near_duplicates(rows, paths, ~bad & ~dup_mask, near_iou, lines_are_boxes))
    reason[dup_mask & (reason == "")] = "box-duplicate"
    return BoxVerdict(bad=bad, clip=clip, duplicate=dup_mask, reason=reason), out


def _fmt(rows: LabelRows, i: int) -> dict[str, str]:
    c = rows.coords[i]
    x1, x2 = c[0] - c[2] / 2, c[0] + c[2] / 2
    y1, y2 = c[1] - c[3] / 2, c[1] + c[3] / 2
    over = max(-x1, x2 - 1, -y1, y2 - 1)
    cls = rows.cls[i]
    cls_s = str(int(cls)) if math.isfinite(cls) and cls == int(cls) else f"{cls:g}"
    return {
        "cls": cls_s,
        "cls_text": repr(rows.cls_text[i]) if rows.cls_text else f"{cls:g}",
        "cx": f"{c[0]:g}",
        "cy": f"{c[1]:g}",
        "w": f"{c[2]:g}",
        "h": f"{c[3]:g}",
        "over": f"{over:.3g}",
    }
