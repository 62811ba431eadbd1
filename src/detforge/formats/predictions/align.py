"""Matching the rows of a prediction file to a ground-truth :class:`Dataset`.

Every reader of :mod:`detforge.formats.predictions` ends here: it hands over one row per
prediction (an image key, a class, a box, a score) and gets back a prediction ``Dataset`` on
the ground truth's image table. Rows whose image or class fits no ground truth are left out
and counted in ``meta["unmatched"]`` (``{"boxes": n, "total": n, "images": [keys],
"classes": [keys]}``), so that :func:`detforge.eval.evaluate` can refuse or warn.

Image keys, tried in this order (the first that matches wins, per image):

* the path the provenance sidecar recorded for an ``image_id`` (exact path, else file stem);
* an integer id: ``gt.images.id`` (COCO ids; for other datasets the row in the whole dataset,
  the number ``convert --to coco`` writes);
* Darknet's numbering (``atoi`` of the file stem, or the digits after its last ``_``) for a
  ground truth without ids of its own, when it matches more results;
* a string: the file stem.

Values: every reader refuses, naming file and line (or result), a box or score that no
evaluation can use (:func:`value_problem`): not finite, beyond :data:`MAX_COORD` pixels
(normalized: beyond :data:`MAX_NORMALIZED` image sizes, which is the same bound on the largest
image), or with a negative width or height. Zero-size boxes are predictions like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Boxes, Dataset
from detforge.data.validity import MAX_COORD, MAX_IMAGE_SIDE
from detforge.utils.paths import PathResolver

MAX_NORMALIZED = MAX_COORD / MAX_IMAGE_SIDE
"""Largest absolute normalized prediction value (about 9.5 image sizes): times the largest
image side (:data:`~detforge.data.validity.MAX_IMAGE_SIDE`) it stays within
:data:`~detforge.data.validity.MAX_COORD` pixels, so no evaluation arithmetic overflows."""


def file_stem(path: str) -> str:
    """File stem of ``path`` with either kind of slash."""
    return PurePath(str(path).replace("\\", "/")).stem


def stem_index(gt: Dataset) -> dict[str, int]:
    """File stem -> first gt image row with that stem."""
    out: dict[str, int] = {}
    for i, p in enumerate(gt.images.path.tolist()):
        out.setdefault(file_stem(p), i)
    return out


def value_problem(
    coords: NDArray[np.float64], score: NDArray[np.float64], fmt: BoxFormat
) -> tuple[int, str] | None:
    """``(row, why)`` of the first prediction whose box (``(N, 4)`` in ``fmt``, as the file
    writes it) or score no evaluation can use, or ``None``: a value that is not finite or
    beyond :data:`MAX_COORD` (normalized: :data:`MAX_NORMALIZED`), a score beyond
    :data:`MAX_COORD`, a negative width or height (``XYXY``: the corners swapped)."""
    b = np.asarray(coords, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    limit = MAX_NORMALIZED if fmt.normalized else MAX_COORD
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(b).all(axis=1) & np.isfinite(s)
        huge_box = np.asarray((np.abs(b) > limit).any(axis=1))
        huge_score = np.abs(s) > MAX_COORD
        if fmt is BoxFormat.XYXY_PIXEL:
            negative = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
        else:
            negative = (b[:, 2] < 0) | (b[:, 3] < 0)
    bad = ~finite | huge_box | huge_score | negative
    if not bad.any():
        return None
    j = int(np.flatnonzero(bad)[0])
    if not finite[j]:
        why = "a box value or the score is not a finite number (nan or inf)"
    elif huge_box[j]:
        unit = "image sizes (normalized values)" if fmt.normalized else "pixels"
        why = f"a box value is beyond {limit:.3g} {unit}; no image is that large"
    elif huge_score[j]:
        why = f"the score is beyond {MAX_COORD:g}"
    elif fmt is BoxFormat.XYXY_PIXEL:
        why = "the box's corners are swapped (x2 < x1 or y2 < y1)"
    else:
        why = "the box has a negative width or height"
    return j, why


def new_unmatched(total: int = 0) -> dict[str, Any]:
    """An empty ``meta["unmatched"]`` record for ``total`` rows read."""
    return {"boxes": 0, "total": total, "images": [], "classes": []}


def _leading_int(stem: str) -> int | None:
    """C ``atoi`` of a file stem (leading digits; what darknet's ``print_cocos`` writes)."""
    digits = ""
    for ch in stem:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


def _tail_int(stem: str) -> int | None:
    """The digits after the last ``_`` (``COCO_val2014_000000000042``: older darknet)."""
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def darknet_image_ids(gt: Dataset) -> list[NDArray[np.int64]]:
    """Darknet's ``image_id`` readings of the GT file names (leading digits of the stem, then
    the digits after its last ``_``), each only when every name has one and no two agree."""
    stems = [file_stem(p) for p in gt.images.path.tolist()]
    out = []
    for rule in (_leading_int, _tail_int):
        nums = [rule(s) for s in stems]
        if nums and all(v is not None for v in nums) and len(set(nums)) == len(nums):
            out.append(np.asarray(nums, dtype=np.int64))
    return out


def factorize(a: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(distinct values sorted, index of each element among them)`` like ``np.unique(...,
    return_inverse=True)``, in linear time when the values span a modest range (ids do)."""
    if not len(a):
        return a[:0], np.zeros(0, dtype=np.int64)
    lo, hi = int(a.min()), int(a.max())
    if hi - lo > 4 * len(a) + (1 << 20):
        uniq, inv = np.unique(a, return_inverse=True)
        return uniq.astype(np.int64), inv.reshape(-1).astype(np.int64)
    seen = np.bincount(a - lo) > 0
    uniq = np.flatnonzero(seen).astype(np.int64) + lo
    pos = np.cumsum(seen, dtype=np.int64) - 1
    return uniq, pos[a - lo]


def _lookup(keys: NDArray[np.int64], rows: NDArray[np.int64], ids: NDArray[np.int64]) -> Any:
    """Row of each of ``ids`` among ``keys`` (``-1`` when absent)."""
    if not len(keys) or not len(ids):
        return np.full(len(ids), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    pos = np.minimum(np.searchsorted(sk, ids), len(sk) - 1)
    return np.where(sk[pos] == ids, rows[order][pos], -1).astype(np.int64)


def match_image_keys(
    keys: Sequence[Any],
    gt: Dataset,
    unmatched: dict[str, Any],
    *,
    recorded: dict[int, str] | None = None,
    darknet: bool = False,
) -> NDArray[np.int64]:
    """``(len(keys),)`` gt row of each distinct image key (``-1`` when none); see the module
    docstring. ``recorded``: ``image_id -> path`` from a provenance sidecar. ``darknet``: the
    keys are darknet's numbers (its ``coco_results.json``), tried before ``gt.images.id``."""
    n = len(keys)
    out = np.full(n, -1, dtype=np.int64)
    is_int = np.array(
        [isinstance(k, int | np.integer) and not isinstance(k, bool) for k in keys], dtype=bool
    )
    ints = np.array([int(k) if ok else 0 for k, ok in zip(keys, is_int, strict=True)], np.int64)
    stems = stem_index(gt)
    known = np.zeros(n, dtype=bool)  # ids whose image the sidecar names: no other guess
    if recorded:  # the image each id was made on: exact path, else that id with its stem
        resolver = PathResolver()  # the same image, however its path is spelled
        where = {resolver.key(p): i for i, p in enumerate(gt.images.path)}
        rows = np.arange(gt.num_images, dtype=np.int64)
        by_id = _lookup(gt.images.id, rows, ints)
        for j in np.flatnonzero(is_int):
            p = recorded.get(int(ints[j]))
            if not p:  # not recorded, or a video frame (no file)
                continue
            known[j] = True
            r = where.get(resolver.key(p), -1)
            if r < 0 and by_id[j] >= 0 and file_stem(gt.images.path[by_id[j]]) == file_stem(p):
                r = int(by_id[j])
            out[j] = r if r >= 0 else stems.get(file_stem(p), -1)
    todo = is_int & (out < 0) & ~known
    if todo.any():
        rows = np.arange(gt.num_images, dtype=np.int64)
        want = ints[todo]
        own_ids = gt.meta.get("format") in ("coco", "tfrecord")  # ids the files hold
        best = np.full(len(want), -1, dtype=np.int64)
        if not darknet:
            best = _lookup(gt.images.id, rows, want)
        if darknet or not own_ids:  # row numbers are no ids: darknet's may fit better
            for nums in darknet_image_ids(gt):
                alt = _lookup(nums, rows, want)
                if (alt >= 0).sum() > (best >= 0).sum():
                    best = alt
                    unmatched["image_ids"] = "darknet's numbers in the file names"
        out[todo] = best
    for k in np.flatnonzero((out < 0) & ~known).tolist():
        out[k] = stems.get(file_stem(str(keys[k])), -1)
    unmatched["images"] = sorted({str(keys[j]) for j in np.flatnonzero(out < 0).tolist()})
    return out


def build_predictions(
    gt: Dataset,
    image: NDArray[np.int64],
    cls: NDArray[np.int64],
    coords: NDArray[np.float64],
    fmt: BoxFormat,
    score: NDArray[np.float64],
    unmatched: dict[str, Any],
    meta: dict[str, Any],
) -> Dataset:
    """A prediction dataset on ``gt``'s image table from per-row arrays; rows with image or
    class ``-1`` are counted in ``unmatched`` and left out. ``meta`` is added to the result's
    (``source``, ``provenance``, ``notes``)."""
    ok = (image >= 0) & (cls >= 0)
    n_bad = len(ok) - int(np.count_nonzero(ok))
    unmatched["boxes"] = int(unmatched.get("boxes", 0)) + n_bad
    unmatched["total"] = int(unmatched.get("total", 0)) or len(ok)
    if n_bad or np.any(image[1:] < image[:-1]):  # drop unmatched; keep boxes grouped by image
        idx = np.flatnonzero(ok)
        idx = idx[np.argsort(image[idx], kind="stable")]
        image, cls, coords, score = image[idx], cls[idx], coords[idx], score[idx]
    m = len(image)
    boxes = Boxes(
        image=np.ascontiguousarray(image, dtype=np.int64),
        cls=np.ascontiguousarray(cls, dtype=np.int64),
        coords=np.ascontiguousarray(coords, dtype=np.float64).reshape(m, 4),
        format=fmt,
        crowd=np.zeros(m, dtype=bool),
        difficult=np.zeros(m, dtype=bool),
        truncated=np.zeros(m, dtype=bool),
        area=np.full(m, np.nan),
        score=np.ascontiguousarray(score, dtype=np.float64),
    )
    full = {"predictions": True, "unmatched": unmatched, "notes": [], **meta}
    return Dataset(gt.class_names, gt.images, boxes, full)
