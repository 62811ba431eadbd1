"""Reading detector output as a prediction :class:`Dataset` aligned to the ground truth.

Three layouts are recognised by :func:`read_predictions`:

* a COCO results JSON: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``
  (pixels); images are matched by id, and by file stem when the id is a string;
* a folder of per-image ``.txt`` files ``class cx cy w h conf`` (normalized, the format
  Ultralytics writes with ``save_conf``), matched to images by file stem;
* a folder of Darknet ``detector valid`` files ``comp4_det_test_<class>.txt`` with lines
  ``<image stem> <prob> <x1> <y1> <x2> <y2>`` (1-based pixels, as Darknet prints them).

The returned dataset shares the ground truth's image table (box ``image`` indexes ``gt``
rows) and class names; predictions that match no image or class are not dropped silently:
they are counted in ``ds.meta["unmatched"]`` (``{"images": [...], "boxes": n,
"classes": [...]}``) for the report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Boxes, Dataset
from detforge.errors import DetforgeError
from detforge.eval.results_json import parse_results
from detforge.formats.coco import coco_category_ids, load_json

COMP4_PREFIX = "comp4_det_test_"


def _stem(path: str) -> str:
    return PurePath(str(path).replace("\\", "/")).stem


def stem_index(gt: Dataset) -> dict[str, int]:
    """File stem -> first gt image row with that stem."""
    out: dict[str, int] = {}
    for i, p in enumerate(gt.images.path.tolist()):
        out.setdefault(_stem(p), i)
    return out


def _build(
    gt: Dataset,
    image: NDArray[np.int64],
    cls: NDArray[np.int64],
    coords: NDArray[np.float64],
    fmt: BoxFormat,
    score: NDArray[np.float64],
    unmatched: dict[str, Any],
    source: str,
) -> Dataset:
    """A prediction dataset on ``gt``'s image table; rows with image or class ``-1`` are
    counted in ``unmatched`` and left out."""
    ok = (image >= 0) & (cls >= 0)
    n_bad = len(ok) - int(np.count_nonzero(ok))
    unmatched["boxes"] = int(unmatched.get("boxes", 0)) + n_bad
    if n_bad or np.any(image[1:] < image[:-1]):  # drop unmatched; keep boxes grouped by image
        idx = np.flatnonzero(ok)
        idx = idx[np.argsort(image[idx], kind="stable")]
        image, cls, coords, score = image[idx], cls[idx], coords[idx], score[idx]
    m = len(image)
    boxes = Boxes(
        image=image,
        cls=cls,
        coords=np.ascontiguousarray(coords, dtype=np.float64).reshape(m, 4),
        format=fmt,
        crowd=np.zeros(m, dtype=bool),
        difficult=np.zeros(m, dtype=bool),
        truncated=np.zeros(m, dtype=bool),
        area=np.full(m, np.nan),
        score=np.ascontiguousarray(score, dtype=np.float64),
    )
    meta = {"source": source, "unmatched": unmatched, "predictions": True}
    return Dataset(gt.class_names, gt.images, boxes, meta)


def read_coco_results(path: str | os.PathLike[str], gt: Dataset) -> Dataset:
    """A COCO results JSON as predictions on ``gt`` (see the module docstring)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DetforgeError(f"cannot read predictions: {exc.strerror}", path=p) from None
    fast = parse_results(raw)
    unmatched: dict[str, Any] = {"images": [], "boxes": 0, "classes": []}
    if fast is not None:
        vals, keys = fast
        col: dict[str, int] = {}
        i = 0
        for k in keys:
            col[k] = i
            i += 4 if k == "bbox" else 1
        ids = vals[:, col["image_id"]].astype(np.int64)
        cat = vals[:, col["category_id"]].astype(np.int64)
        exact = (
            len(vals) == 0 or np.abs(vals[:, [col["image_id"], col["category_id"]]]).max() < 2**53
        )
        if (
            exact
            and np.array_equal(ids, vals[:, col["image_id"]])
            and np.array_equal(cat, vals[:, col["category_id"]])
        ):  # integral ids that a float64 holds exactly; anything else goes through json
            del raw
            b = col["bbox"]
            return _build(
                gt,
                _map_image_ids(ids, gt, unmatched),
                _map_category_ids(cat, gt, unmatched),
                vals[:, b : b + 4],
                BoxFormat.XYWH_PIXEL,
                vals[:, col["score"]],
                unmatched,
                str(p),
            )
    data = load_json(p)
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list):
        raise DetforgeError(
            "expected a COCO results list [{image_id, category_id, bbox, score}, ...]", path=p
        )
    n = len(data)
    try:
        img_raw = [d["image_id"] for d in data]
        cat = np.fromiter((d["category_id"] for d in data), dtype=np.int64, count=n)
        score = np.fromiter((d["score"] for d in data), dtype=np.float64, count=n)
        bbox = np.fromiter(
            (v for d in data for v in d["bbox"][:4]), dtype=np.float64, count=4 * n
        ).reshape(n, 4)
    except (KeyError, TypeError, ValueError) as exc:
        raise DetforgeError(
            f"a result lacks a numeric image_id, category_id, bbox [x,y,w,h] or score ({exc!r})",
            path=p,
        ) from None
    image = _map_image_ids(img_raw, gt, unmatched)
    cls = _map_category_ids(cat, gt, unmatched)
    return _build(gt, image, cls, bbox, BoxFormat.XYWH_PIXEL, score, unmatched, str(p))


def _stem_number(stem: str) -> int | None:
    """Darknet's image id for a file: the digits after the last ``_`` (``COCO_val_000042``)."""
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _id_table(ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    order = np.argsort(ids, kind="stable")
    return ids[order], order.astype(np.int64)


def _lookup(
    table: tuple[NDArray[np.int64], NDArray[np.int64]], ids: NDArray[np.int64]
) -> NDArray[np.int64]:
    """GT row of each id in ``table`` (sorted ids, rows), ``-1`` when absent."""
    sid, row = table
    if not len(sid):
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sid, ids), len(sid) - 1)
    return np.where(sid[pos] == ids, row[pos], -1).astype(np.int64)


def stem_number_ids(gt: Dataset) -> NDArray[np.int64] | None:
    """Darknet's ``image_id`` of each GT image (digits after the last ``_`` of the file name),
    or ``None`` when some name has none or two names share one."""
    nums = [_stem_number(_stem(p)) for p in gt.images.path.tolist()]
    if not nums or any(v is None for v in nums) or len(set(nums)) != len(nums):
        return None
    return np.asarray(nums, dtype=np.int64)


def _map_image_ids(
    raw: Sequence[Any] | NDArray[np.int64], gt: Dataset, unmatched: dict[str, Any]
) -> NDArray[np.int64]:
    """Result ``image_id`` -> gt row.

    Integer ids are ``gt.images.id`` (what COCO files and detforge's own outputs use). For a
    GT without real ids (Darknet lists, folders: ids are row numbers), Darknet's
    ``coco_results.json`` numbers images by the digits at the end of their file names; that
    reading is used instead when it matches more of the results. Ids matching neither, and
    string ids, are tried as file stems.
    """
    try:
        ids = np.asarray(raw, dtype=np.int64)
        numeric = True
    except (TypeError, ValueError):
        numeric = False
    if numeric:
        out = _lookup(_id_table(gt.images.id), ids)
        rows_only = np.array_equal(gt.images.id, np.arange(gt.num_images))
        if (out < 0).any() and gt.meta.get("format") != "coco" and rows_only:
            nums = stem_number_ids(gt)
            if nums is not None:
                alt = _lookup(_id_table(nums), ids)
                if (alt >= 0).sum() > (out >= 0).sum():
                    out = alt
                    unmatched["image_ids"] = "numbers at the end of the file names (Darknet)"
        if (out < 0).any():
            stems = stem_index(gt)
            for j in np.flatnonzero(out < 0):
                out[j] = stems.get(str(raw[int(j)]), -1)
    else:
        stems = stem_index(gt)
        out = np.array([stems.get(_stem(str(r)), -1) for r in raw], dtype=np.int64)
    missing = sorted({str(raw[int(j)]) for j in np.flatnonzero(out < 0)})
    unmatched["images"] = list(unmatched.get("images", [])) + missing
    return out.astype(np.int64)


def _map_category_ids(
    cat: NDArray[np.int64], gt: Dataset, unmatched: dict[str, Any]
) -> NDArray[np.int64]:
    """COCO ``category_id`` -> gt class: the gt's category ids, or 0-based class ids when the
    file holds ids that only make sense that way (some exporters write ``class`` as is)."""
    ids = np.asarray(coco_category_ids(gt), dtype=np.int64)
    lut = {int(c): k for k, c in enumerate(ids)}
    lo, hi = (int(cat.min()), int(cat.max())) if len(cat) else (0, 0)
    small = lo >= 0 and hi < 1 << 20
    present = set(
        np.flatnonzero(np.bincount(cat, minlength=1)).tolist() if small else np.unique(cat).tolist()
    )
    if len(cat) == 0:
        present = set()
    if not present <= set(lut) and present <= set(range(gt.num_classes)):
        lut = {k: k for k in range(gt.num_classes)}
    if small:  # a lookup table
        table = np.full(hi + 1, -1, dtype=np.int64)
        for c, k in lut.items():
            if 0 <= c <= hi:
                table[c] = k
        out = table[cat]
    else:
        uniq, inv = np.unique(cat, return_inverse=True)
        out = np.array([lut.get(int(c), -1) for c in uniq], dtype=np.int64)[inv.reshape(-1)]
    unmatched["classes"] = sorted(int(c) for c in present if c not in lut)
    return out


def _parse_txt(f: Path) -> NDArray[np.float64]:
    """One ``class cx cy w h conf`` file as a ``(K, 6)`` array (strict, errors name the line)."""
    lines = [ln.split() for ln in f.read_text(encoding="utf-8", errors="replace").splitlines()]
    rows = [ln for ln in lines if ln]
    bad = next((i for i, ln in enumerate(lines) if ln and len(ln) != 6), None)
    if bad is not None:
        raise DetforgeError(
            f"expected 6 columns 'class cx cy w h conf', found {len(lines[bad])}; predictions "
            "need the confidence column (Ultralytics: save_conf=True)",
            path=f,
            line=bad + 1,
        )
    try:
        return np.array(rows, dtype=np.float64).reshape(-1, 6)
    except ValueError:
        line = next(i for i, ln in enumerate(lines) if ln and not _numeric(ln)) + 1
        raise DetforgeError("a value is not a number", path=f, line=line) from None


def _numeric(parts: list[str]) -> bool:
    try:
        [float(p) for p in parts]
    except ValueError:
        return False
    return True


def read_txt_predictions(folder: str | os.PathLike[str], gt: Dataset) -> Dataset:
    """Per-image ``class cx cy w h conf`` files (normalized) as predictions on ``gt``."""
    from detforge.utils.progress import progress

    root = Path(folder)
    stems = stem_index(gt)
    unmatched: dict[str, Any] = {"images": [], "boxes": 0, "classes": []}
    imgs, rows = [], []
    files = sorted(root.rglob("*.txt"))
    for f in progress(files, total=len(files), desc="reading predictions", unit="file"):
        arr = _parse_txt(f)
        if not len(arr):
            continue
        row = stems.get(f.stem, -1)
        if row < 0:
            unmatched["images"].append(f.stem)
        imgs.append(np.full(len(arr), row, dtype=np.int64))
        rows.append(arr)
    data = np.concatenate(rows) if rows else np.zeros((0, 6))
    image = np.concatenate(imgs) if imgs else np.zeros(0, dtype=np.int64)
    cls = data[:, 0].astype(np.int64)
    bad = (cls < 0) | (cls >= gt.num_classes) | (cls != data[:, 0])
    unmatched["classes"] = sorted(set(data[bad, 0].tolist()))
    cls = np.where(bad, -1, cls)
    return _build(
        gt, image, cls, data[:, 1:5], BoxFormat.CXCYWH_NORM, data[:, 5], unmatched, str(root)
    )


def read_comp4_predictions(folder: str | os.PathLike[str], gt: Dataset) -> Dataset:
    """Darknet ``comp4_det_test_<class>.txt`` files as predictions on ``gt`` (pixels, the
    1-based coordinates Darknet prints are shifted back by one)."""
    root = Path(folder)
    stems = stem_index(gt)
    names = {n: k for k, n in enumerate(gt.class_names)}
    unmatched: dict[str, Any] = {"images": [], "boxes": 0, "classes": []}
    imgs, clss, rows = [], [], []
    for f in sorted(root.glob(f"*{COMP4_PREFIX}*.txt")):
        cname = f.stem.split(COMP4_PREFIX, 1)[1]
        k = names.get(cname, -1)
        if k < 0:
            unmatched["classes"].append(cname)
        for ln, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines()):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DetforgeError(
                    "expected '<image> <prob> <x1> <y1> <x2> <y2>'", path=f, line=ln + 1
                )
            try:
                vals = [float(v) for v in parts[1:]]
            except ValueError:
                raise DetforgeError("a number is not numeric", path=f, line=ln + 1) from None
            row = stems.get(parts[0], -1)
            if row < 0:
                unmatched["images"].append(parts[0])
            imgs.append(row)
            clss.append(k)
            rows.append(vals)
    data = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    coords = data[:, 1:5] - 1.0
    unmatched["images"] = sorted(set(unmatched["images"]))
    return _build(
        gt,
        np.asarray(imgs, dtype=np.int64),
        np.asarray(clss, dtype=np.int64),
        coords,
        BoxFormat.XYXY_PIXEL,
        data[:, 0],
        unmatched,
        str(root),
    )


def read_predictions(path: str | os.PathLike[str], gt: Dataset) -> Dataset:
    """Predictions at ``path`` (a results JSON, a ``.txt`` folder or Darknet ``comp4``
    files), aligned to ``gt``; see the module docstring."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() == ".json":
            return read_coco_results(p, gt)
        raise DetforgeError(
            "predictions must be a COCO results .json file or a folder of .txt files", path=p
        )
    if not p.is_dir():
        raise DetforgeError("predictions not found", path=p)
    if any(p.glob(f"*{COMP4_PREFIX}*.txt")):
        return read_comp4_predictions(p, gt)
    if not any(p.rglob("*.txt")):
        raise DetforgeError(
            "no .txt prediction files in this folder (expected per-image 'class cx cy w h conf' "
            "files or Darknet comp4_det_test_<class>.txt files)",
            path=p,
        )
    return read_txt_predictions(p, gt)
