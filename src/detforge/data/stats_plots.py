"""PNG plots of :func:`detforge.data.stats.compute_stats` results (matplotlib figures, no pyplot).

:func:`plot_stats` writes four files into a folder and returns their paths:

* ``class_histogram.png`` -- boxes per class, one bar group per split (at most 60 classes,
  the most frequent);
* ``boxes_per_image.png`` -- how many images hold 0, 1, 2, ... boxes, per split;
* ``box_sizes.png`` -- box width vs height (2-D histogram, log counts) and size histogram;
* ``aspect_ratios.png`` -- histogram of ``w / h`` on a log axis.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detforge.data.stats import SplitStats
from detforge.utils.plotting import save_figure

MAX_CLASSES_SHOWN = 60
"""The class histogram shows at most this many classes (the most frequent)."""


# Over 80 lines on purpose: one figure, panel after panel.
def plot_stats(
    stats: Sequence[SplitStats], class_names: Sequence[str], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write the four PNG plots into ``out_dir`` (created); returns their paths."""
    from matplotlib.figure import Figure  # no pyplot: the user's backend is left alone

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = [s for s in stats if s.name != "all"] or list(stats)
    written = []

    total = np.sum([s.class_counts for s in splits], axis=0)
    shown = np.arange(len(class_names))
    title = "Boxes per class"
    if len(shown) > MAX_CLASSES_SHOWN:  # keep the figure readable: the most frequent classes
        shown = np.sort(np.argsort(-total, kind="stable")[:MAX_CLASSES_SHOWN])
        title += f" ({MAX_CLASSES_SHOWN} most frequent of {len(class_names)})"
    c = len(shown)
    fig = Figure(figsize=(max(6.0, 0.35 * c + 2), 4.5))
    ax = fig.subplots()
    x = np.arange(c)
    width = 0.8 / max(len(splits), 1)
    for k, s in enumerate(splits):
        ax.bar(x + k * width - 0.4 + width / 2, s.class_counts[shown], width, label=s.name)
    ax.set_xticks(
        x,
        [class_names[i] for i in shown.tolist()],
        rotation=45 if c > 8 else 0,
        ha="right" if c > 8 else "center",
    )
    ax.set_ylabel("boxes")
    ax.set_title(title)
    ax.legend()
    written.append(save_figure(fig, out / "class_histogram.png", dpi=110, tight=True))

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    top = int(max((s.boxes_per_image.max(initial=0) for s in splits), default=0))
    bins = np.arange(top + 2) - 0.5
    for s in splits:
        ax.hist(s.boxes_per_image, bins=bins.tolist(), histtype="step", linewidth=1.5, label=s.name)
    ax.set_xlabel("boxes in an image")
    ax.set_ylabel("images")
    ax.set_title("Boxes per image")
    ax.legend()
    written.append(save_figure(fig, out / "boxes_per_image.png", dpi=110, tight=True))

    units = stats[-1].units
    every = stats[-1]
    fig = Figure(figsize=(11, 4.5))
    ax1, ax2 = fig.subplots(1, 2)
    if len(every.widths):
        _, _, _, im = ax1.hist2d(every.widths, every.heights, bins=50, cmin=1, norm="log")
        fig.colorbar(im, ax=ax1, label="boxes")
        for s in splits:
            ax2.hist(s.sizes, bins=50, histtype="step", linewidth=1.5, label=s.name)
        ax2.legend()
    ax1.set_xlabel(f"box width ({units})")
    ax1.set_ylabel(f"box height ({units})")
    ax1.set_title("Box width vs height (all splits)")
    ax2.set_xlabel(f"sqrt(w*h) ({units})")
    ax2.set_ylabel("boxes")
    ax2.set_title("Box size")
    written.append(save_figure(fig, out / "box_sizes.png", dpi=110, tight=True))

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    finite = [s.aspects[s.aspects > 0] for s in splits]
    pooled = np.concatenate(finite) if finite else np.zeros(0)
    if len(pooled):
        lo, hi = float(pooled.min()), float(pooled.max())
        edges = np.geomspace(lo, hi if hi > lo else lo * 1.01, 40)
        for s, a in zip(splits, finite, strict=True):
            ax.hist(a, bins=edges.tolist(), histtype="step", linewidth=1.5, label=s.name)
        ax.set_xscale("log")
        ax.legend()
    ax.set_xlabel("aspect ratio w/h (log scale)")
    ax.set_ylabel("boxes")
    ax.set_title("Box aspect ratios")
    written.append(save_figure(fig, out / "aspect_ratios.png", dpi=110, tight=True))
    return written
