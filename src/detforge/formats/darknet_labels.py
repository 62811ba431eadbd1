"""Darknet label files: where an image's label file is, and its ``class cx cy w h`` lines."""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError


def label_path_candidates(image_path: str) -> list[str]:
    """Where the label file of ``image_path`` may be, in the order they are tried:

    1. same folder and stem with ``.txt`` (``a/b/x.jpg`` -> ``a/b/x.txt``);
    2. Darknet's rule: the first ``/JPEGImages/`` replaced by ``/labels/``;
    3. Ultralytics' rule: the last ``/images/`` replaced by ``/labels/``.
    """
    stem = os.path.splitext(image_path)[0]
    out = [stem + ".txt"]
    norm = stem.replace("\\", "/")
    if "/JPEGImages/" in norm:
        out.append(norm.replace("/JPEGImages/", "/labels/", 1) + ".txt")
    if "/images/" in norm:
        head, _, tail = norm.rpartition("/images/")
        cand = f"{head}/labels/{tail}.txt"
        if cand not in out:
            out.append(cand)
    return out


def find_label_path(image_path: str) -> str | None:
    """The first of :func:`label_path_candidates` that is a file, or ``None`` (a negative)."""
    for cand in label_path_candidates(image_path):
        if os.path.isfile(cand):
            return cand
    return None


def parse_label_text(
    text: str, *, path: str | os.PathLike[str] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Parse Darknet label lines ``class cx cy w h`` (normalized, blank lines skipped).

    Returns ``cls (K,) int64`` and ``coords (K, 4) float64`` in ``CXCYWH_NORM``. Strict: a line
    with another number of fields, a non-integer class or a non-number coordinate raises
    :class:`DetforgeError` with ``path`` and the 1-based line. Values are not range-checked here
    (that is ``detforge check``'s job).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    cls: list[int] = []
    coords: list[list[float]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise DetforgeError(
                f"expected 5 values 'class cx cy w h', got {len(parts)}: {raw.strip()!r}",
                path=path,
                line=n,
            )
        try:
            c = int(parts[0])
        except ValueError:
            raise DetforgeError(
                f"class id must be a whole number, got {parts[0]!r}", path=path, line=n
            ) from None
        try:
            xywh = [float(v) for v in parts[1:]]
        except ValueError:
            raise DetforgeError(
                f"coordinates must be numbers, got {' '.join(parts[1:])!r}", path=path, line=n
            ) from None
        if not all(np.isfinite(xywh)):
            raise DetforgeError(f"coordinates must be finite, got {xywh}", path=path, line=n)
        cls.append(c)
        coords.append(xywh)
    return (
        np.asarray(cls, dtype=np.int64),
        np.asarray(coords, dtype=np.float64).reshape(-1, 4),
    )


def format_label_lines(cls: NDArray[np.int64], coords: NDArray[np.float64]) -> str:
    """Darknet label text for ``cls (K,)`` and normalized ``coords (K, 4)``, 6 decimals."""
    return "".join(
        f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
        for c, (x, y, w, h) in zip(cls.tolist(), coords.tolist(), strict=True)
    )
