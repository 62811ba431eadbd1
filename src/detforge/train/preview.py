"""The per-epoch preview picture: fixed validation images, ground truth next to predictions.

Each row is :func:`detforge.predict.draw.draw_comparison` -- the picture ``detforge show
--pred`` saves: ground truth left, predictions right, matches / misses / false positives in
the same three colours, with its legend -- and the sheet has a heading naming the epoch and
the two sides, so a broken label import is obvious after one epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

PREVIEW_CONF = 0.25
"""Predictions drawn in the preview: score at least this (the usual display threshold)."""


def draw_preview(
    path: Path,
    images: Sequence[Any],
    preds: Sequence[tuple[Any, Any, Any]],
    truths: Sequence[tuple[Any, Any]],
    class_names: Sequence[str],
    *,
    title: str = "",
) -> None:
    """Save ground truth (left) next to predictions (right), one row per image, as a JPEG.

    ``images``: HxWx3 uint8 RGB arrays (the network input); ``preds``: per image
    ``(boxes (K,4) xyxy px, scores (K,), classes (K,))``, drawn when ``score >=
    PREVIEW_CONF``; ``truths``: per image ``(boxes (T,4) xyxy px, classes (T,))``.
    ``title`` (e.g. ``epoch 3``) leads the heading.
    """
    import numpy as np
    from PIL import Image

    from detforge.predict.draw import draw_comparison
    from detforge.utils.io import atomic_open

    rows = []
    for img, (pb, ps, pc), (tb, tc) in zip(images, preds, truths, strict=False):
        keep = np.asarray(ps) >= PREVIEW_CONF
        pair = draw_comparison(
            np.ascontiguousarray(img), np.asarray(tb).reshape(-1, 4), np.asarray(tc),
            np.asarray(pb).reshape(-1, 4)[keep], np.asarray(pc)[keep], np.asarray(ps)[keep],
            class_names=class_names,
        )  # fmt: skip
        rows.append(pair)
    if not rows:
        return
    width = max(r.size[0] for r in rows)
    gap = 4
    first_w = np.asarray(images[0]).shape[1]
    head = _heading(width, first_w, title)
    sheet = Image.new(
        "RGB", (width, head.size[1] + sum(r.size[1] + gap for r in rows)), (255, 255, 255)
    )
    sheet.paste(head, (0, 0))
    y = head.size[1]
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.size[1] + gap
    with atomic_open(path, "wb") as f:
        sheet.save(f, format="JPEG", quality=90)


def _heading(width: int, image_width: int, title: str) -> Any:
    """A white strip: ``title`` on the first line (when given), then ``ground truth`` over the
    left half and ``predictions`` over the right (``image_width``: the width of one side)."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(10, min(24, image_width // 8))
    font = ImageFont.load_default(size=size)
    lines = 2 if title else 1
    strip = Image.new("RGB", (width, lines * (size + 6) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    y = 4
    if title:
        draw.text((4, y), title, fill=(0, 0, 0), font=font)
        y += size + 6
    draw.text((4, y), "ground truth", fill=(0, 0, 0), font=font)
    right_x = image_width + max(4, image_width // 100)  # draw_comparison's gap
    draw.text((right_x + 4, y), f"predictions (score >= {PREVIEW_CONF:g})", fill=(0, 0, 0),
              font=font)  # fmt: skip
    return strip
