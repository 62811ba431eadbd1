"""Text prediction files: per-image ``class cx cy w h conf`` files and Darknet's
``comp4_det_test_<class>.txt``.

* Per-image files (``predict --save-txt``, ``darknet detector test -save_labels``,
  Ultralytics ``save_conf=True``): one ``class cx cy w h conf`` line per box, coordinates
  normalised to the image, written with 6 decimals (Darknet's ``%f``); matched to images by
  file stem (or by the paths of a ``labels.meta.json`` sidecar).
* ``comp4_det_test_<class>.txt`` (``darknet detector valid``): lines ``<image stem> <prob>
  <x1> <y1> <x2> <y2>``, 1-based pixels (shifted back by one on reading). These are *not* the
  detections ``detector map`` scores: ``valid`` keeps boxes from threshold 0.001 (``map``:
  0.005), runs NMS at 0.6 (``map``: 0.45, DIoU-NMS in pixels), clips boxes to the image and
  rounds to ``%f``; the reader adds a note saying so.

A folder holds one layout or the other (:func:`prediction_files`): both at once is an error,
as is a folder named like a prediction file. Values no evaluation can use (not finite, huge,
a negative size or swapped corners: :func:`~detforge.formats.predictions.align.value_problem`)
are an error naming file and line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset
from detforge.data.validity import MAX_COORD
from detforge.errors import DetforgeError
from detforge.formats.predictions.align import (
    build_predictions,
    match_image_keys,
    new_unmatched,
    value_problem,
)
from detforge.formats.predictions.provenance import Provenance
from detforge.utils.io import atomic_write_text

COMP4_PREFIX = "comp4_det_test_"
COMP4_NOTE = (
    "comp4_det_test_* files come from 'darknet detector valid' (threshold 0.001, NMS 0.6, boxes "
    "clipped to the image, %f rounding), not the detections 'detector map' scores (threshold "
    "0.005, NMS 0.45 / the cfg's DIoU-NMS): these numbers will not equal darknet's 'detector map'"
)


def darknet_lines(
    boxes: ArrayLike, classes: ArrayLike, scores: ArrayLike, width: int, height: int
) -> str:
    """``(K, 4)`` xyxy pixel boxes on a ``width x height`` image -> text, one
    ``class cx cy w h conf`` line per box (normalised coordinates, 6 decimals)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    c = np.asarray(classes, dtype=np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not len(b):
        return ""
    if width <= 0 or height <= 0:
        raise ValueError("image size is needed to normalise boxes")
    cx = (b[:, 0] + b[:, 2]) / 2 / width
    cy = (b[:, 1] + b[:, 3]) / 2 / height
    w = (b[:, 2] - b[:, 0]) / width
    h = (b[:, 3] - b[:, 1]) / height
    return "".join(
        f"{int(c[i])} {cx[i]:.6f} {cy[i]:.6f} {w[i]:.6f} {h[i]:.6f} {s[i]:.6f}\n"
        for i in range(len(b))
    )


def write_darknet_txt(
    path: str | os.PathLike[str],
    boxes: ArrayLike,
    classes: ArrayLike,
    scores: ArrayLike,
    width: int,
    height: int,
) -> None:
    """Write :func:`darknet_lines` to ``path`` (an empty file for an image without detections)."""
    atomic_write_text(path, darknet_lines(boxes, classes, scores, width, height))


def prediction_files(folder: str | os.PathLike[str]) -> tuple[str, list[Path]]:
    """``("comp4", files)`` for a folder of Darknet ``comp4_det_test_<class>.txt`` files,
    ``("txt", files)`` for per-image ``.txt`` files (any depth), sorted. A folder with both
    kinds, with neither, or with a folder named like a prediction file is a DetforgeError."""
    root = Path(folder)
    comp4 = sorted(root.glob(f"*{COMP4_PREFIX}*.txt"))
    names = set(comp4)
    per_image = sorted(f for f in root.rglob("*.txt") if f not in names)
    for f in (*comp4, *per_image):
        if not f.is_file():
            raise DetforgeError(
                "a folder (or other non-file) named like a prediction file; prediction files "
                "are plain .txt files",
                path=f,
            )
    if comp4 and per_image:
        raise DetforgeError(
            f"mixed prediction formats: {comp4[0].name} is a Darknet comp4_det_test_<class>.txt "
            f"file, {per_image[0].relative_to(root)} a per-image 'class cx cy w h conf' file; "
            "keep one kind per folder",
            path=root,
        )
    if not comp4 and not per_image:
        raise DetforgeError(
            "no .txt prediction files in this folder (expected per-image 'class cx cy w h conf' "
            "files or Darknet comp4_det_test_<class>.txt files)",
            path=root,
        )
    return ("comp4", comp4) if comp4 else ("txt", per_image)


def _read_lines(f: Path) -> list[str]:
    """The lines of a prediction file; an unreadable one is a DetforgeError naming it."""
    try:
        return f.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DetforgeError(f"cannot read predictions: {exc.strerror or exc}", path=f) from None


def _parse_txt(f: Path) -> NDArray[np.float64]:
    """One ``class cx cy w h conf`` file as a ``(K, 6)`` array (strict, errors name the line)."""
    lines = [ln.split() for ln in _read_lines(f)]
    bad = next((i for i, ln in enumerate(lines) if ln and len(ln) != 6), None)
    if bad is not None:
        raise DetforgeError(
            f"expected 6 columns 'class cx cy w h conf', found {len(lines[bad])}; predictions "
            "need the confidence column (Ultralytics: save_conf=True)",
            path=f,
            line=bad + 1,
        )
    for i, ln in enumerate(lines):
        try:
            [float(v) for v in ln]
        except ValueError:
            raise DetforgeError("a value is not a number", path=f, line=i + 1) from None
    arr = np.array([ln for ln in lines if ln], dtype=np.float64).reshape(-1, 6)
    with np.errstate(invalid="ignore"):
        bad_class = ~(np.abs(arr[:, 0]) <= MAX_COORD)  # NaN too
    problem = value_problem(arr[:, 1:5], arr[:, 5], BoxFormat.CXCYWH_NORM)
    if bad_class.any():
        k = int(np.flatnonzero(bad_class)[0])
        if problem is None or k <= problem[0]:
            problem = (k, "the class is not a finite number")
    if problem is not None:
        line = [i for i, ln in enumerate(lines) if ln][problem[0]] + 1
        raise DetforgeError(problem[1], path=f, line=line)
    return arr


def read_txt_predictions(
    folder: str | os.PathLike[str], gt: Dataset, *, provenance: Provenance | None = None
) -> Dataset:
    """Per-image ``class cx cy w h conf`` files (normalized) as predictions on ``gt``."""
    from detforge.utils.progress import progress

    root = Path(folder)
    keys: list[Any] = []
    imgs, rows = [], []
    by_stem = {Path(p).stem: i for i, p in (provenance.images.items() if provenance else ())}
    kind, files = prediction_files(root)
    if kind != "txt":
        raise DetforgeError("a folder of Darknet comp4 files, not per-image files", path=root)
    for f in progress(files, total=len(files), desc="reading predictions", unit="file"):
        arr = _parse_txt(f)
        if not len(arr):
            continue
        imgs.append(np.full(len(arr), len(keys), dtype=np.int64))
        keys.append(by_stem.get(f.stem, f.stem))
        rows.append(arr)
    data = np.concatenate(rows) if rows else np.zeros((0, 6))
    unmatched = new_unmatched(len(data))
    recorded = provenance.images if provenance else None
    row_of = match_image_keys(keys, gt, unmatched, recorded=recorded)
    image = row_of[np.concatenate(imgs)] if imgs else np.zeros(0, dtype=np.int64)
    cls = data[:, 0].astype(np.int64)
    bad = (cls < 0) | (cls >= gt.num_classes) | (cls != data[:, 0])
    # as written: class 7, not 7.0 (the column is read as floats)
    unmatched["classes"] = sorted({int(v) if v.is_integer() else v for v in data[bad, 0].tolist()})
    cls = np.where(bad, -1, cls)
    meta = {"source": str(root), "provenance": provenance}
    fmt = BoxFormat.CXCYWH_NORM
    return build_predictions(gt, image, cls, data[:, 1:5], fmt, data[:, 5], unmatched, meta)


def _comp4_lines(f: Path) -> tuple[list[str], list[list[float]]]:
    stems, vals, numbers = [], [], []
    for ln, line in enumerate(_read_lines(f)):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            msg = "expected '<image> <prob> <x1> <y1> <x2> <y2>'"
            raise DetforgeError(msg, path=f, line=ln + 1)
        try:
            vals.append([float(v) for v in parts[1:]])
        except ValueError:
            raise DetforgeError("a value is not a number", path=f, line=ln + 1) from None
        stems.append(parts[0])
        numbers.append(ln + 1)
    arr = np.asarray(vals, dtype=np.float64).reshape(-1, 5)
    problem = value_problem(arr[:, 1:5], arr[:, 0], BoxFormat.XYXY_PIXEL)
    if problem is not None:
        raise DetforgeError(problem[1], path=f, line=numbers[problem[0]])
    return stems, vals


def read_comp4_predictions(folder: str | os.PathLike[str], gt: Dataset) -> Dataset:
    """Darknet ``comp4_det_test_<class>.txt`` files as predictions on ``gt`` (pixels, the
    1-based coordinates Darknet prints are shifted back by one); see the module docstring."""
    root = Path(folder)
    names = {n: k for k, n in enumerate(gt.class_names)}
    bad_classes: list[str] = []
    stems: list[str] = []
    clss: list[int] = []
    rows: list[list[float]] = []
    kind, files = prediction_files(root)
    if kind != "comp4":
        raise DetforgeError("no Darknet comp4_det_test_<class>.txt files here", path=root)
    for f in files:
        cname = f.stem.split(COMP4_PREFIX, 1)[1]
        k = names.get(cname, -1)
        if k < 0:
            bad_classes.append(cname)
        s, v = _comp4_lines(f)
        stems += s
        rows += v
        clss += [k] * len(s)
    data = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    unmatched = new_unmatched(len(data))
    uniq = sorted(set(stems))
    pos = {s: i for i, s in enumerate(uniq)}
    row_of = match_image_keys(uniq, gt, unmatched)
    image = row_of[np.array([pos[s] for s in stems], dtype=np.int64)] if stems else np.zeros(0)
    unmatched["classes"] = bad_classes
    meta = {"source": str(root), "notes": [COMP4_NOTE], "darknet_valid": True}
    return build_predictions(
        gt, image.astype(np.int64), np.asarray(clss, dtype=np.int64), data[:, 1:5] - 1.0,
        BoxFormat.XYXY_PIXEL, data[:, 0], unmatched, meta,
    )  # fmt: skip


def write_comp4(folder: str | os.PathLike[str], pred: Dataset) -> list[Path]:
    """Write predictions as Darknet's ``comp4_det_test_<class>.txt`` files (``%f``, 1-based
    pixels, one file per class, images named by file stem) into ``folder``."""
    if pred.boxes.format.normalized and pred.num_boxes:
        from detforge.formats.common import ensure_sizes

        pred = ensure_sizes(pred)
    xyxy = pred.coords_as(BoxFormat.XYXY_PIXEL) + 1.0
    stems = [Path(str(p)).stem for p in pred.images.path]
    out = []
    for k, name in enumerate(pred.class_names):
        sel = np.flatnonzero(pred.boxes.cls == k)
        text = "".join(
            f"{stems[pred.boxes.image[j]]} {pred.boxes.score[j]:f} {xyxy[j, 0]:f} {xyxy[j, 1]:f} "
            f"{xyxy[j, 2]:f} {xyxy[j, 3]:f}\n"
            for j in sel.tolist()
        )
        path = Path(folder) / f"{COMP4_PREFIX}{name}.txt"
        atomic_write_text(path, text)
        out.append(path)
    return out
