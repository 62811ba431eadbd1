"""The run folder: its name, ``metrics.csv``, ``results.png`` and the per-epoch preview.

Layout of a run folder::

    runs/train-2/
        config.yaml        resolved options
        last.pt, best.pt   checkpoints (atomic)
        metrics.csv        one row per epoch: losses, LR, speed, validation metrics
        results.png        losses and metrics against epochs
        preview/epoch_003.jpg  predictions (left) next to ground truth (right)
        events.*           TensorBoard scalars
        train.log          NaN reports and other notes
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detforge.utils.io import atomic_write_text


def next_run_dir(base: str | Path = "runs/train") -> Path:
    """The first of ``base``, ``base-2``, ``base-3`` ... that does not exist yet."""
    base = Path(base)
    if not base.exists():
        return base
    n = 2
    while True:
        cand = base.with_name(f"{base.name}-{n}")
        if not cand.exists():
            return cand
        n += 1


def write_metrics_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write all ``rows`` (one dict per epoch) atomically; columns are the union, in order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    atomic_write_text(path, buf.getvalue())


def read_metrics_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.csv`` with numbers parsed back to ``float``/``int``."""
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _parse(v: str | None) -> Any:
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


LOSS_KEYS = ("train/box", "train/cls", "train/dfl")
METRIC_KEYS = ("val/mAP50", "val/mAP50-95")


def plot_results(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``results.png``: one panel per training loss, per metric and for the LR, vs epoch."""
    from matplotlib.figure import Figure

    from detforge.utils.plotting import save_figure

    keys = [k for k in (*LOSS_KEYS, *METRIC_KEYS, "lr") if any(_num(r.get(k)) for r in rows)]
    if not keys:
        return
    fig = Figure(figsize=(3.2 * len(keys), 3.0))
    axes = fig.subplots(1, len(keys), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        pts = [(r["epoch"], float(r[key])) for r in rows if _num(r.get(key))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(float(v))


def draw_preview(
    path: Path,
    images: Sequence[Any],
    preds: Sequence[tuple[Any, Any, Any]],
    truths: Sequence[tuple[Any, Any]],
    class_names: Sequence[str],
) -> None:
    """Save predictions next to ground truth, one row per image.

    ``images``: HxWx3 uint8 arrays (the network input); ``preds``: per image
    ``(boxes (K,4) xyxy px, scores (K,), classes (K,))``; ``truths``: per image
    ``(boxes (T,4) xyxy px, classes (T,))``. Predictions are drawn left (score >= 0.25),
    ground truth right, so a broken label import is obvious after one epoch.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    rows = []
    for img, (pb, ps, pc), (tb, tc) in zip(images, preds, truths, strict=False):
        arr = np.ascontiguousarray(img)
        left = Image.fromarray(arr)
        right = Image.fromarray(arr)
        dl, dr = ImageDraw.Draw(left), ImageDraw.Draw(right)
        for b, s, c in zip(np.asarray(pb), np.asarray(ps), np.asarray(pc), strict=False):
            if s < 0.25:
                continue
            color = _color(int(c))
            dl.rectangle([float(v) for v in b], outline=color, width=2)
            dl.text(
                (float(b[0]) + 2, float(b[1]) + 1), f"{_name(class_names, c)} {s:.2f}", fill=color
            )
        for b, c in zip(np.asarray(tb), np.asarray(tc), strict=False):
            color = _color(int(c))
            dr.rectangle([float(v) for v in b], outline=color, width=2)
            dr.text((float(b[0]) + 2, float(b[1]) + 1), _name(class_names, c), fill=color)
        w, h = left.size
        row = Image.new("RGB", (2 * w + 4, h), (255, 255, 255))
        row.paste(left, (0, 0))
        row.paste(right, (w + 4, 0))
        rows.append(row)
    if not rows:
        return
    width = max(r.size[0] for r in rows)
    sheet = Image.new("RGB", (width, sum(r.size[1] + 4 for r in rows)), (255, 255, 255))
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.size[1] + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.jpg")
    sheet.save(tmp, quality=90)
    tmp.replace(path)


def _name(names: Sequence[str], c: Any) -> str:
    i = int(c)
    return names[i] if 0 <= i < len(names) else str(i)


_PALETTE = [
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
]  # fmt: skip


def _color(c: int) -> tuple[int, int, int]:
    return _PALETTE[c % len(_PALETTE)]
