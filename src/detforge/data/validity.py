"""The one rule for which boxes and image sizes a reader may let into a :class:`Dataset`.

Every reader (Darknet/Ultralytics label files, COCO JSON, Pascal VOC XML, TFRecords) judges
the boxes *as the file writes them* with :func:`box_codes` and hands the result to
:func:`screen_boxes`, which removes the boxes that break the rule and lists each in
``ds.meta["invalid_boxes"]`` (an :class:`InvalidBox` naming file and record). So no
non-finite or impossible box survives a reader, and every command sees the same boxes:

* ``box-not-finite``: a coordinate or size is NaN or infinite (``null`` in COCO JSON,
  ``<xmin>nan</xmin>``, ``1e999``);
* ``box-coordinate-huge``: a value beyond :data:`MAX_COORD` (no image is that large; such
  values lose all precision in float32 training code);
* ``box-zero-size``: width or height zero or negative as written (the code ``check`` uses
  for Darknet lines too). For Pascal VOC zero is
  ``xmin == xmax`` (a click without a drag): the devkit's inclusive pixels would make it one
  pixel wide, but the annotator drew nothing;
* ``image-size-impossible``: a stated image width or height that is not finite, negative or
  above :data:`MAX_IMAGE_SIDE`; the size is treated as unknown (read from the image header)
  and the image is listed.

``check`` reports every entry as an error finding, ``convert`` refuses a dataset with entries
(``--skip-bad`` converts without them, listing them), ``info`` shows their count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset

MAX_IMAGE_SIDE = 1 << 20
"""Largest accepted image width or height in pixels (1,048,576: above any camera or slide
scanner; a JPEG is at most 65,535)."""

MAX_COORD = 1e7
"""Largest accepted absolute box value, in the units the file uses (pixels or normalized)."""

CODES: dict[str, str] = {
    "box-not-finite": "a box value is NaN, null or infinite",
    "box-coordinate-huge": f"a box value is beyond {MAX_COORD:g} (no image is that large)",
    "box-zero-size": "a box has zero or negative width or height as written (VOC: a click "
    "without a drag)",
    "image-size-impossible": f"a stated image size is not finite, negative or above "
    f"{MAX_IMAGE_SIDE} px",
}


@dataclass(frozen=True)
class InvalidBox:
    """One box (or image size) a reader left out, and where it was written."""

    code: str
    """One of :data:`CODES`."""
    path: str
    """The file that holds it (label file, JSON, XML, record file)."""
    record: str
    """Which entry of that file: ``line 3``, ``annotation id 17``, ``object 2``, ``record 5``."""
    detail: str
    """The values as written."""
    image: str = ""
    """The image it belongs to (its ``images.path``; ``""``: not known, then it belongs to
    every part of the dataset)."""
    split: str = ""
    """That image's split as read: with ``image`` it tells which part of a dataset cut to a
    split (or to some images) the entry belongs to (:func:`of_images`)."""

    def message(self) -> str:
        return f"{self.path}: {self.record}: {self.code}: {self.detail}"


def box_codes(written: ArrayLike) -> NDArray[np.object_]:
    """``(N,)`` codes (``""`` = valid) for boxes ``(N, 4)`` written as ``(x, y, width, height)``
    in the file's own units (pixels or normalized; VOC: ``xmax - xmin`` as written)."""
    b = np.asarray(written, dtype=np.float64).reshape(-1, 4)
    codes = np.full(len(b), "", dtype=object)
    with np.errstate(invalid="ignore"):
        codes[((b[:, 2] <= 0) | (b[:, 3] <= 0))] = "box-zero-size"
        codes[(np.abs(b) > MAX_COORD).any(axis=1)] = "box-coordinate-huge"
    codes[~np.isfinite(b).all(axis=1)] = "box-not-finite"
    return codes


BORDER_CODES: dict[str, str] = {
    "coord-negative": "the box centre lies left of or above the image",
    "coord-above-one": "a box value is beyond the image size (normalized above 1)",
}
"""What :func:`border_codes` finds (``check`` reports them as errors)."""


def border_codes(cxcywh_norm: ArrayLike) -> NDArray[np.object_]:
    """``(N,)`` codes (``""`` = inside, or only partly past the border) for boxes ``(N, 4)``
    in ``CXCYWH_NORM``: ``coord-negative`` for a negative centre, ``coord-above-one`` for a
    centre or size above 1. Zero-size boxes are left to :func:`box_codes`. The rule of
    ``check``'s label checks and of ``convert``."""
    c = np.asarray(cxcywh_norm, dtype=np.float64).reshape(-1, 4)
    codes = np.full(len(c), "", dtype=object)
    with np.errstate(invalid="ignore"):
        zero = (c[:, 2] <= 0) | (c[:, 3] <= 0)
        negative = ~zero & (c[:, :2] < 0).any(axis=1)
        above = ~zero & ~negative & (c > 1).any(axis=1)
    codes[negative] = "coord-negative"
    codes[above] = "coord-above-one"
    return codes


def wholly_outside(xyxy: NDArray[np.float64], w: Any, h: Any) -> NDArray[np.bool_]:
    """``(N,)`` whether no part of each box ``(x1, y1, x2, y2)`` (N, 4) lies inside ``[0, w] x
    [0, h]`` (touching an edge is outside; ``w``, ``h`` scalars or (N,)). The rule of
    ``check``'s unusable ``box-outside-image`` boxes and of eval's outside-image note."""
    with np.errstate(invalid="ignore"):
        out: NDArray[np.bool_] = (
            (xyxy[:, 2] <= 0) | (xyxy[:, 3] <= 0) | (xyxy[:, 0] >= w) | (xyxy[:, 1] >= h)
        )
    return out


def stated_size_matches(stated: tuple[int, int], stored: tuple[int, int], orientation: int) -> bool:
    """Whether an annotation's stated ``(width, height)`` is the image's: its ``stored`` pixel
    size, or the size displayed after EXIF ``orientation`` (5-8 swap the sides). The rule of
    ``check``'s ``image-size-mismatch`` and of ``convert``."""
    shown = (stored[1], stored[0]) if orientation >= 5 else stored
    return tuple(stated) in (tuple(stored), shown)


def size_ok(value: float) -> bool:
    """Whether a stated image width/height is possible (``0`` = unknown is possible)."""
    return bool(np.isfinite(value)) and 0 <= value <= MAX_IMAGE_SIDE


def parse_size(raw: Any) -> float:
    """A stated image size as a float (``nan`` when it is not a number at all)."""
    if raw is None or raw == "":
        return 0.0
    try:
        return float(raw)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def screen_boxes(
    ds: Dataset,
    codes: NDArray[np.object_],
    *,
    where: Callable[[int], tuple[str, str, str]],
) -> Dataset:
    """``ds`` without the boxes whose ``codes`` are not empty, each listed in
    ``ds.meta["invalid_boxes"]``; ``where(j)`` gives box ``j``'s ``(path, record, detail)``."""
    bad = np.flatnonzero(codes != "")
    if not len(bad):
        return ds
    listed: list[InvalidBox] = list(ds.meta.get("invalid_boxes", []))
    for j in bad.tolist():
        path, record, detail = where(j)
        i = int(ds.boxes.image[j])
        image, split = str(ds.images.path[i]), str(ds.images.split[i])
        listed.append(InvalidBox(str(codes[j]), path, record, detail, image, split))
    keep = np.flatnonzero(codes == "")
    meta = {**ds.meta, "invalid_boxes": listed}
    return replace(ds, boxes=ds.boxes.take(keep), meta=meta)


def screen_label_boxes(ds: Dataset, label_paths: Sequence[str]) -> Dataset:
    """``ds`` without the boxes the one validity rule refuses (zero or negative size, huge
    values; :mod:`detforge.data.validity`), each listed with its label file and box number."""
    codes = box_codes(ds.boxes.coords)
    if not (codes != "").any():
        return ds

    def where(j: int) -> tuple[str, str, str]:
        image = int(ds.boxes.image[j])
        cx, cy, w, h = ds.boxes.coords[j].tolist()
        label = label_paths[image] or str(ds.images.path[image])
        detail = f"{int(ds.boxes.cls[j])} {cx:g} {cy:g} {w:g} {h:g}"
        k = int(np.count_nonzero(ds.boxes.image[:j] == image)) + 1
        return label, f"box {k}", detail

    return screen_boxes(ds, codes, where=where)


def of_images(ds: Dataset, entries: Sequence[InvalidBox]) -> list[InvalidBox]:
    """The ``entries`` that belong to an image ``ds`` holds (same path and split; an entry
    without an image belongs to every part): a dataset read whole and then cut to a split,
    or to some images, keeps the reader's whole lists in ``meta``, and counts only these."""
    if not entries:
        return []
    held = set(zip(ds.images.path.tolist(), ds.images.split.tolist(), strict=True))
    return [b for b in entries if not b.image or (b.image, b.split) in held]


def invalid_boxes(ds: Dataset) -> list[InvalidBox]:
    """What the reader of ``ds`` left out of the images ``ds`` holds (:func:`of_images`;
    empty for a clean dataset)."""
    return of_images(ds, ds.meta.get("invalid_boxes") or [])


def left_out_note(ds: Dataset) -> str | None:
    """The one note (without ``note: ``) on the boxes (or image sizes) the reader of the
    ground truth ``ds`` left out of its images, named with the split when ``ds`` holds one:
    they are not scored, and never silently. ``None`` when none were. ``evaluate`` adds it to
    its result's notes for the images it scores."""
    left = invalid_boxes(ds)
    if not left:
        return None
    splits = ds.splits()
    where = f" of the {splits[0]!r} split" if len(splits) == 1 and splits[0] else ""
    return (
        f"{len(left)} ground-truth box(es) or image size(s){where} the reader left out are "
        f"not scored (first: {left[0].message()}; see detforge check)"
    )


def refuse_invalid(ds: Dataset, *, skip_bad: bool, note: Callable[[str], None]) -> None:
    """For writers: a :class:`DetforgeError` when the reader left boxes out, unless
    ``skip_bad`` (then each is listed through ``note``)."""
    bad = invalid_boxes(ds)
    if not bad:
        return
    if skip_bad:
        for b in bad:
            note(f"left out: {b.message()}")
        return
    kinds = sorted({b.code for b in bad})
    raise DetforgeError(
        f"{len(bad)} invalid box(es) or image size(s) ({', '.join(kinds)}), first: "
        f"{bad[0].message()}; fix them (see detforge check) or pass --skip-bad to convert "
        "without them"
    )


def assert_writable(ds: Dataset) -> None:
    """Last guard of every writer: :class:`DetforgeError` if a box about to be written is not
    finite or has a negative size, or an image size is not finite."""
    from detforge.data.boxes import BoxFormat

    coords = ds.boxes.coords
    b = np.asarray(coords, dtype=np.float64).reshape(-1, 4).copy()
    if ds.boxes.format is BoxFormat.XYXY_PIXEL:
        b[:, 2:] -= b[:, :2]  # sizes
    widths, heights = ds.images.width, ds.images.height
    with np.errstate(invalid="ignore"):
        wrong = np.flatnonzero(~np.isfinite(b).all(axis=1) | (b[:, 2] < 0) | (b[:, 3] < 0))
    if len(wrong):
        raise DetforgeError(
            f"{len(wrong)} box(es) are not finite or have a negative size (first: "
            f"{np.asarray(coords)[wrong[0]].tolist()}); detforge does not write such boxes"
        )
    w, h = np.asarray(widths, dtype=np.float64), np.asarray(heights, dtype=np.float64)
    if not (np.isfinite(w).all() and np.isfinite(h).all()):
        raise DetforgeError("an image size is not finite; detforge does not write it")
