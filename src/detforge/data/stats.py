"""Dataset statistics: per-split class histogram, boxes per image, box sizes and aspects
(``detforge stats``), and the per-split counts ``detforge info`` prints (:func:`summarize`).

:func:`compute_stats` is pure (a :class:`Dataset` in, plain dicts and arrays out);
:func:`format_stats` renders the table ``detforge stats`` prints; plots live in
:mod:`detforge.data.stats_plots`.

Box sizes are in pixels when every boxed image's size is known, else in normalized units
(fractions of the image side) -- ``units`` says which. ``size`` is ``sqrt(w * h)``; ``aspect``
is ``w / h`` (boxes with zero height are left out of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, per_image

SIZE_EDGES_PX: tuple[float, ...] = (0, 8, 16, 32, 64, 96, 128, 256, 512, np.inf)
"""Bins for the size table (pixels); 32 and 96 are COCO's small/medium/large limits."""


@dataclass
class SplitStats:
    """Statistics of one split (``name == "all"`` for the whole dataset).

    Arrays: ``class_counts (C,)`` boxes per class, ``class_images (C,)`` images holding each
    class, ``boxes_per_image (N,)``, and per box ``widths``/``heights``/``sizes``/``aspects``
    ``(M,)`` in ``units``.
    """

    name: str
    images: int
    negatives: int
    boxes: int
    class_counts: NDArray[np.int64]
    class_images: NDArray[np.int64]
    boxes_per_image: NDArray[np.int64]
    widths: NDArray[np.float64]
    heights: NDArray[np.float64]
    sizes: NDArray[np.float64]
    aspects: NDArray[np.float64]
    units: str = "px"
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict (percentiles instead of per-box arrays)."""

        def pct(a: NDArray[np.float64]) -> dict[str, float]:
            if not len(a):
                return {}
            q = np.percentile(a, [0, 5, 25, 50, 75, 95, 100])
            keys = ("min", "p5", "p25", "median", "p75", "p95", "max")
            return {k: round(float(v), 6) for k, v in zip(keys, q, strict=True)}

        return {
            "split": self.name,
            "images": self.images,
            "negatives": self.negatives,
            "boxes": self.boxes,
            "class_counts": self.class_counts.tolist(),
            "class_images": self.class_images.tolist(),
            "boxes_per_image": pct(self.boxes_per_image.astype(np.float64)),
            "max_boxes_per_image": int(self.boxes_per_image.max(initial=0)),
            "units": self.units,
            "width": pct(self.widths),
            "height": pct(self.heights),
            "size": pct(self.sizes),
            "aspect": pct(self.aspects),
        }


def class_counts(
    image: NDArray[np.int64], cls: NDArray[np.int64], num_classes: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(boxes per class (C,), images per class (C,))`` of boxes given by their ``image`` and
    ``cls`` ids (``(M,)`` each); ids ``>= num_classes`` are not counted."""
    c = num_classes
    boxes = np.bincount(cls, minlength=c)[:c].astype(np.int64)
    # distinct (image, class) pairs, as one int64 key each, by a sort: np.unique on
    # mostly distinct keys (hash-based in NumPy >= 2.3) is several times slower
    k = max(c, int(cls.max()) + 1 if len(cls) else 0, 1)
    keys = np.sort(image * k + cls)
    pair_cls = keys[np.diff(keys, prepend=-1) != 0] % k
    images = np.bincount(pair_cls, minlength=c)[:c].astype(np.int64)
    return boxes, images


def _split_stats(ds: Dataset, name: str, pixel: bool) -> SplitStats:
    counts, class_images = class_counts(ds.boxes.image, ds.boxes.cls, ds.num_classes)
    per_image = ds.boxes_per_image()
    fmt = BoxFormat.XYWH_PIXEL if pixel else BoxFormat.CXCYWH_NORM
    wh = ds.coords_as(fmt)[:, 2:] if len(ds.boxes) else np.zeros((0, 2))
    w, h = wh[:, 0].astype(np.float64), wh[:, 1].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspects = np.where(h > 0, w / h, np.nan)
    return SplitStats(
        name=name,
        images=ds.num_images,
        negatives=int((per_image == 0).sum()),
        boxes=ds.num_boxes,
        class_counts=counts,
        class_images=class_images,
        boxes_per_image=per_image,
        widths=w,
        heights=h,
        sizes=np.sqrt(np.clip(w * h, 0.0, None)),
        aspects=aspects[np.isfinite(aspects)],
        units="px" if pixel else "normalized",
    )


def compute_stats(ds: Dataset) -> list[SplitStats]:
    """Statistics of every split, then of the whole dataset (``"all"``) when it has several;
    a dataset without images has only the ``"all"`` entry (all zeros)."""
    used = np.unique(ds.boxes.image)
    pixel = bool(
        len(used) == 0 or (np.all(ds.images.width[used] > 0) and np.all(ds.images.height[used] > 0))
    )
    splits = ds.splits()
    out = [_split_stats(ds.select(ds.images.split == s), s or "(none)", pixel) for s in splits]
    if len(splits) != 1:
        out.append(_split_stats(ds, "all", pixel))
    return out


def cross_split_note(ds: Dataset) -> str | None:
    """One line on the images listed in more than one split (a leak), which the ``"all"``
    column of :func:`compute_stats` and :func:`summarize` counts once per split (as ``info``
    does); ``None`` when there are none. An image is a path in any spelling
    (:func:`~detforge.data.lists.first_entries`)."""
    from detforge.data.lists import first_entries, repeated_entries

    if len(ds.splits()) < 2:
        return None
    paths, splits = ds.images.path.tolist(), ds.images.split.tolist()
    first_of = dict(repeated_entries(paths))
    again = [i for i in first_entries(paths, splits) if i in first_of]
    if not again:
        return None
    n = len({first_of[i] for i in again})
    return (
        f"{n} image(s) are in more than one split (a leak: see detforge info or check); "
        f"'all' counts them once per split, as info does ({len(again)} extra)"
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    for r in rows:
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


def format_stats(stats: list[SplitStats], class_names: tuple[str, ...] | list[str]) -> str:
    """A plain-text report: overview, class histogram, box sizes and aspect ratios."""
    names = [s.name for s in stats]
    parts = ["Overview"]
    rows = [
        ["images", *[str(s.images) for s in stats]],
        ["negatives (no boxes)", *[str(s.negatives) for s in stats]],
        ["boxes", *[str(s.boxes) for s in stats]],
        ["boxes/image mean", *[f"{s.boxes / max(s.images, 1):.2f}" for s in stats]],
        ["boxes/image max", *[str(int(s.boxes_per_image.max(initial=0))) for s in stats]],
    ]
    parts.append(_table(["", *names], rows))
    parts.append("\nBoxes per class (images holding the class)")
    rows = [
        [n, *[f"{int(s.class_counts[k])} ({int(s.class_images[k])})" for s in stats]]
        for k, n in enumerate(class_names)
    ]
    parts.append(_table(["class", *names], rows))
    unused = [n for k, n in enumerate(class_names) if stats[-1].class_counts[k] == 0]
    if unused:
        parts.append(f"classes without boxes: {', '.join(unused)}")
    units = stats[-1].units
    parts.append(f"\nBox size sqrt(w*h), {units}: percentiles")
    keys = ("min", "p5", "median", "p95", "max")
    rows = []
    for s in stats:
        q = s.summary()
        rows.append([s.name, *[f"{q['size'].get(k, float('nan')):.3g}" for k in keys]])
    parts.append(_table(["split", *keys], rows))
    if units == "px":
        edges = SIZE_EDGES_PX
        labels = [
            f"<{int(edges[i + 1])}" if np.isfinite(edges[i + 1]) else f">={int(edges[i])}"
            for i in range(len(edges) - 1)
        ]
        rows = [
            [s.name, *[str(int(v)) for v in np.histogram(s.sizes, bins=np.asarray(edges))[0]]]
            for s in stats
        ]
        parts.append(_table(["split", *labels], rows))
    parts.append("\nAspect ratio w/h: percentiles")
    rows = []
    for s in stats:
        q = s.summary()
        rows.append([s.name, *[f"{q['aspect'].get(k, float('nan')):.3g}" for k in keys]])
    parts.append(_table(["split", *keys], rows))
    return "\n".join(parts) + "\n"


def summarize(ds: Dataset) -> dict[str, Any]:
    """Counts of ``ds`` as a JSON-ready dict.

    ``splits``: split name (``"all"`` last) -> ``{"images", "labelled", "negatives",
    "no_label_file", "boxes", "per_class": {name: boxes}, "images_per_class": {name: images}}``;
    ``sizes``: ``{"min": [w, h], "max": [w, h], "distinct": n, "unknown": n}`` in pixels;
    plus ``classes`` and the reader's ``notes``.
    """
    per_img = ds.boxes_per_image()
    label_paths = per_image(ds, "label_paths")
    no_file = (
        np.array([not lp for lp in label_paths], dtype=bool)
        if label_paths is not None
        else np.zeros(ds.num_images, dtype=bool)
    )
    split_col = ds.images.split
    names = list(ds.class_names)
    out: dict[str, Any] = {"classes": names, "splits": {}}
    for s in [*ds.splits(), "all"]:
        m = np.ones(ds.num_images, bool) if s == "all" else split_col == s
        bm = m[ds.boxes.image]
        per_class, img_per_class = class_counts(ds.boxes.image[bm], ds.boxes.cls[bm], len(names))
        out["splits"][s or "(none)"] = {
            "images": int(m.sum()),
            "labelled": int((per_img[m] > 0).sum()),
            "negatives": int((per_img[m] == 0).sum()),
            "no_label_file": int(no_file[m].sum()),
            "boxes": int(bm.sum()),
            "per_class": {n: int(c) for n, c in zip(names, per_class.tolist(), strict=True)},
            "images_per_class": {
                n: int(c) for n, c in zip(names, img_per_class.tolist(), strict=True)
            },
        }
    known = ds.images.width > 0
    w, h = ds.images.width[known], ds.images.height[known]
    out["sizes"] = {
        "min": [int(w.min()), int(h.min())] if known.any() else None,
        "max": [int(w.max()), int(h.max())] if known.any() else None,
        "distinct": len(set(zip(w.tolist(), h.tolist(), strict=True))),
        "unknown": int((~known).sum()),
    }
    out["notes"] = [str(n) for n in ds.meta.get("notes", [])]
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """Plain-text tables of :func:`summarize`'s result."""
    lines = []
    names = summary["classes"]
    lines.append(f"classes: {len(names)} ({', '.join(names)})")
    splits = summary["splits"]
    head = f"{'split':<8}{'images':>9}{'labelled':>10}{'negative':>10}{'no .txt':>9}{'boxes':>9}"
    lines += ["", head]
    for s, d in splits.items():
        lines.append(
            f"{s:<8}{d['images']:>9}{d['labelled']:>10}{d['negatives']:>10}"
            f"{d['no_label_file']:>9}{d['boxes']:>9}"
        )
    if names:
        lines += ["", "boxes (images) per class:"]
        width = max(8, *(len(n) for n in names)) + 2
        lines.append(" " * width + "".join(f"{s:>16}" for s in splits))
        for n in names:
            cells = "".join(
                f"{str(d['per_class'][n]) + ' (' + str(d['images_per_class'][n]) + ')':>16}"
                for d in splits.values()
            )
            lines.append(f"{n:<{width}}{cells}")
    sz = summary["sizes"]
    if sz["min"] is not None:
        lines += [
            "",
            f"image sizes: {sz['min'][0]}x{sz['min'][1]} .. {sz['max'][0]}x{sz['max'][1]} "
            f"({sz['distinct']} distinct)"
            + (f", {sz['unknown']} unreadable" if sz["unknown"] else ""),
        ]
    for note in summary["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)
