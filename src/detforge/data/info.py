"""Dataset summaries: counts per split and per class (what ``detforge info`` prints)."""

from __future__ import annotations

from typing import Any

import numpy as np

from detforge.data.dataset import Dataset


def summarize(ds: Dataset) -> dict[str, Any]:
    """Counts of ``ds`` as a JSON-ready dict.

    ``splits``: split name (``"all"`` last) -> ``{"images", "labelled", "negatives",
    "no_label_file", "boxes", "per_class": {name: boxes}, "images_per_class": {name: images}}``;
    ``sizes``: ``{"min": [w, h], "max": [w, h], "distinct": n, "unknown": n}`` in pixels;
    plus ``classes`` and the reader's ``notes``.
    """
    per_img = ds.boxes_per_image()
    label_paths = ds.meta.get("label_paths")
    no_file = (
        np.array([not lp for lp in label_paths], dtype=bool)
        if label_paths is not None and len(label_paths) == ds.num_images
        else np.zeros(ds.num_images, dtype=bool)
    )
    split_col = ds.images.split
    names = list(ds.class_names)
    out: dict[str, Any] = {"classes": names, "splits": {}}
    for s in [*ds.splits(), "all"]:
        m = np.ones(ds.num_images, bool) if s == "all" else split_col == s
        bm = m[ds.boxes.image]
        cls = ds.boxes.cls[bm]
        per_class = np.bincount(cls, minlength=len(names))[: len(names)]
        # distinct (image, class) pairs, as one int64 key each, by a sort: np.unique on
        # mostly distinct keys (hash-based in NumPy >= 2.3) is several times slower
        k = max(len(names), int(cls.max()) + 1 if len(cls) else 0, 1)
        keys = np.sort(ds.boxes.image[bm] * k + cls)
        pair_cls = keys[np.diff(keys, prepend=-1) != 0] % k
        img_per_class = np.bincount(pair_cls, minlength=len(names))[: len(names)]
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
