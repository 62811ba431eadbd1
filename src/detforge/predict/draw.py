"""Drawing boxes so a person can see what a dataset holds and what a detector does.

Everything here works on Pillow images and numpy arrays and returns *new* images. Boxes are
``(K, 4)`` xyxy in continuous pixels of the image they are drawn on; a box's outline is drawn
just inside its extent (the pixel columns ``floor(x1)`` .. ``ceil(x2) - 1``), so a box that
covers the whole image stays visible. Labels ("name 0.87") sit above the box when there is room
and inside its top edge otherwise, and are always kept inside the image.

* :func:`draw_boxes` -- boxes coloured per class with names (and scores for predictions);
* :func:`match_boxes` -- greedy same-class IoU matching, as the Darknet/COCO protocols do;
* :func:`draw_comparison` -- ground truth beside predictions, with matches (TP), misses (FN)
  and false positives (FP) in three distinct colours and a legend;
* :func:`contact_sheet` -- a grid of thumbnails with captions.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detforge.data.boxes import box_iou

if TYPE_CHECKING:
    from PIL import Image as PILImage

RGB = tuple[int, int, int]

PALETTE: tuple[RGB, ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
    (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
    (128, 128, 0), (255, 215, 180), (0, 0, 128), (255, 225, 25), (128, 128, 128),
)  # fmt: skip
"""Twenty well-separated colours (Sasha Trubetskoy's list); class ``c`` uses ``PALETTE[c % 20]``."""

TP_COLOR: RGB = (0, 158, 115)  # bluish green
FN_COLOR: RGB = (230, 159, 0)  # orange
FP_COLOR: RGB = (204, 0, 102)  # crimson/purple
"""Match colours, chosen to stay distinct for the common colour-vision deficiencies."""


def class_color(cls: int) -> RGB:
    """The colour of class ``cls`` (0-based)."""
    return PALETTE[int(cls) % len(PALETTE)]


def _text_color(bg: RGB) -> RGB:
    """Black or white, whichever reads better on ``bg`` (by perceived luminance)."""
    lum = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2]
    return (0, 0, 0) if lum > 140 else (255, 255, 255)


@lru_cache(maxsize=16)
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _as_pil(image: Any) -> PILImage.Image:
    """A new RGB Pillow image from a Pillow image or an ``(H, W, 3)`` uint8 RGB array."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image.copy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {arr.shape} {arr.dtype}")
    return Image.fromarray(np.ascontiguousarray(arr[:, :, :3]), "RGB")


def default_line_width(width: int, height: int) -> int:
    """Outline thickness in pixels for an image of this size (2 for 640 px, at least 1)."""
    return max(1, round((width + height) / 2 * 0.003))


def box_pixels(box: ArrayLike, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel extent ``(left, top, right, bottom)``, inclusive, of a continuous xyxy box,
    clipped to the image. This is the outermost ring the outline is drawn on."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64))
    left = min(max(int(np.floor(x1)), 0), width - 1)
    top = min(max(int(np.floor(y1)), 0), height - 1)
    right = min(max(int(np.ceil(x2)) - 1, left), width - 1)
    bottom = min(max(int(np.ceil(y2)) - 1, top), height - 1)
    return left, top, right, bottom


def _label(draw: Any, text: str, ext: tuple[int, int, int, int], color: RGB, size: int,
           width: int, height: int) -> None:  # fmt: skip
    font = _font(size)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    tw, th = x1 - x0 + 4, y1 - y0 + 4
    left, top = ext[0], ext[1]
    y = top - th if top - th >= 0 else top  # above the box, else inside its top edge
    x = min(max(left, 0), max(width - tw, 0))
    y = min(max(y, 0), max(height - th, 0))
    draw.rectangle((x, y, x + tw - 1, y + th - 1), fill=color)
    draw.text((x + 2 - x0, y + 2 - y0), text, fill=_text_color(color), font=font)


def score_text(score: float) -> str:
    """A score as drawn on a picture: two decimals, or one significant digit below 0.01 so
    a low score never reads as ``0.00`` (0.004 -> ``0.004``, 0.00012 -> ``0.0001``)."""
    if score >= 0.01 or score <= 0:
        return f"{score:.2f}"
    return f"{score:.1g}" if score >= 1e-4 else f"{score:.0e}"


def draw_boxes(
    image: Any,
    boxes: ArrayLike,
    classes: ArrayLike,
    *,
    scores: ArrayLike | None = None,
    class_names: Sequence[str] = (),
    colors: Sequence[RGB] | None = None,
    line_width: int | None = None,
    labels: bool = True,
) -> PILImage.Image:
    """Draw ``(K, 4)`` xyxy pixel ``boxes`` on a copy of ``image`` and return it.

    ``classes`` ``(K,)`` picks each box's colour (``class_color``) and name; ``scores`` ``(K,)``
    adds a confidence to the label; ``colors`` ``(K,)`` overrides the colour per box. Labels are
    drawn after all outlines (lowest score first) so the most confident stay readable.
    """
    from PIL import ImageDraw

    im = _as_pil(image)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    c = np.asarray(classes, dtype=np.int64).reshape(-1)
    s = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(b) == 0 or im.width == 0 or im.height == 0:
        return im
    lw = line_width or default_line_width(im.width, im.height)
    size = max(10, round(lw * 5.5))
    draw = ImageDraw.Draw(im)
    order = np.argsort(s, kind="stable") if s is not None else np.arange(len(b))
    exts = [box_pixels(b[i], im.width, im.height) for i in range(len(b))]
    cols = [colors[i] if colors is not None else class_color(c[i]) for i in range(len(b))]
    for i in order:
        left, top, right, bottom = exts[i]
        for k in range(lw):  # rings inward so the outline stays inside the box
            if left + k > right - k or top + k > bottom - k:
                break
            draw.rectangle((left + k, top + k, right - k, bottom - k), outline=cols[i])
    if labels:
        for i in order:
            ci = int(c[i])
            name = class_names[ci] if 0 <= ci < len(class_names) else str(ci)
            text = name if s is None else f"{name} {score_text(float(s[i]))}"
            _label(draw, text, exts[i], cols[i], size, im.width, im.height)
    return im


def match_boxes(
    gt_boxes: ArrayLike,
    gt_classes: ArrayLike,
    pred_boxes: ArrayLike,
    pred_classes: ArrayLike,
    pred_scores: ArrayLike,
    *,
    iou: float = 0.5,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Greedy matching by descending score: each prediction takes the unmatched ground-truth
    box of its class with the highest IoU if that IoU is ``>= iou``.

    Returns ``(pred_tp (K,), gt_matched (M,))`` booleans: true positives among the predictions
    and ground-truth boxes that were found (the rest are false positives and misses).
    """
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gc = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
    p = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    pc = np.asarray(pred_classes, dtype=np.int64).reshape(-1)
    ps = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    tp = np.zeros(len(p), dtype=bool)
    matched = np.zeros(len(g), dtype=bool)
    if len(p) == 0 or len(g) == 0:
        return tp, matched
    ious = box_iou(p, g)
    ious[pc[:, None] != gc[None, :]] = -1.0
    for i in np.argsort(-ps, kind="stable"):
        cand = np.where(matched, -1.0, ious[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou:
            tp[i] = True
            matched[j] = True
    return tp, matched


def _legend(width: int, items: Sequence[tuple[str, RGB | None]], size: int) -> PILImage.Image:
    """A white strip ``width`` wide with a swatch and text per item, wrapped onto rows."""
    from PIL import Image, ImageDraw

    font = _font(size)
    pad = max(4, size // 2)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    placed: list[tuple[int, int, str, RGB | None]] = []
    x, row = pad, 0
    for text, color in items:
        w = int(measure.textlength(text, font=font)) + (size + pad // 2 if color else 0)
        if x > pad and x + w > width - pad:
            x, row = pad, row + 1
        placed.append((x, row, text, color))
        x += w + 2 * pad
    strip = Image.new("RGB", (width, (row + 1) * (size + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for x, r, text, color in placed:
        y = pad + r * (size + pad)
        if color is not None:
            draw.rectangle((x, y, x + size - 1, y + size - 1), fill=color)
            x += size + pad // 2
        draw.text((x, y), text, fill=(0, 0, 0), font=font)
    return strip


def draw_comparison(
    image: Any,
    gt_boxes: ArrayLike,
    gt_classes: ArrayLike,
    pred_boxes: ArrayLike,
    pred_classes: ArrayLike,
    pred_scores: ArrayLike,
    *,
    class_names: Sequence[str] = (),
    iou: float = 0.5,
    line_width: int | None = None,
) -> PILImage.Image:
    """Ground truth (left) beside predictions (right) on one canvas, with a legend below.

    Left: found ground truth in ``TP_COLOR``, missed ground truth (FN) in ``FN_COLOR``. Right:
    matched predictions (TP) in ``TP_COLOR``, false positives in ``FP_COLOR``. Matching is
    :func:`match_boxes` at ``iou``. The canvas is ``(2W + gap) x (H + legend)`` pixels.
    """
    from PIL import Image

    base = _as_pil(image)
    tp, found = match_boxes(gt_boxes, gt_classes, pred_boxes, pred_classes, pred_scores, iou=iou)
    gt_cols = [TP_COLOR if f else FN_COLOR for f in found]
    pr_cols = [TP_COLOR if t else FP_COLOR for t in tp]
    left = draw_boxes(base, gt_boxes, gt_classes, class_names=class_names, colors=gt_cols,
                      line_width=line_width)  # fmt: skip
    right = draw_boxes(base, pred_boxes, pred_classes, scores=pred_scores,
                       class_names=class_names, colors=pr_cols, line_width=line_width)  # fmt: skip
    gap = max(4, base.width // 100)
    lw = line_width or default_line_width(base.width, base.height)
    size = max(12, round(lw * 6))
    n_tp, n_fn, n_fp = int(tp.sum()), int((~found).sum()), int((~tp).sum())
    legend = _legend(
        2 * base.width + gap,
        [
            (f"ground truth found / match (TP) {n_tp}", TP_COLOR),
            (f"missed ground truth (FN) {n_fn}", FN_COLOR),
            (f"false positive (FP) {n_fp}", FP_COLOR),
            (f"(left: ground truth, right: predictions, IoU >= {iou:g})", None),
        ],
        size,
    )
    canvas = Image.new("RGB", (2 * base.width + gap, base.height + legend.height), (255, 255, 255))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (base.width + gap, 0))
    canvas.paste(legend, (0, base.height))
    return canvas


def contact_sheet(
    images: Sequence[Any],
    *,
    captions: Sequence[str] | None = None,
    cols: int | None = None,
    cell: int = 320,
) -> PILImage.Image:
    """A grid of thumbnails, each fitted into a ``cell x cell`` square (aspect kept, 2 px
    margin) with an optional caption under it. Rows are as tall as the tallest thumbnail, so
    landscape pictures leave no empty bands. ``cols`` defaults to ``ceil(sqrt(n))``."""
    from PIL import Image, ImageDraw

    n = len(images)
    if n == 0:
        raise ValueError("contact_sheet needs at least one image")
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = (n + cols - 1) // cols
    thumbs = []
    for img in images:
        im = _as_pil(img)
        im.thumbnail((cell - 4, cell - 4))
        thumbs.append(im)
    row_h = max(t.height for t in thumbs) + 4
    size = max(10, cell // 22)
    cap_h = size + 6 if captions is not None else 0
    sheet = Image.new("RGB", (cols * cell, rows * (row_h + cap_h)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    font = _font(size)
    for k, im in enumerate(thumbs):
        r, c = divmod(k, cols)
        x0, y0 = c * cell, r * (row_h + cap_h)
        sheet.paste(im, (x0 + (cell - im.width) // 2, y0 + (row_h - im.height) // 2))
        if captions is not None:
            text = captions[k]
            while len(text) > 4 and draw.textlength(text, font=font) > cell - 6:
                text = "…" + text[2:]
            draw.text((x0 + 3, y0 + row_h), text, fill=(235, 235, 235), font=font)
    return sheet
