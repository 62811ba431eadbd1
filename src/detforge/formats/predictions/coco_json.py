"""COCO results JSON: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``.

Written by ``detforge predict --save-json``, ``val --save-json``, ``eval``/``map --out``
(``predictions.json``); read by ``eval``, ``show --pred`` and the report, and by pycocotools'
``COCO.loadRes`` (which is why the file stays a plain list: what made it goes to the sidecar,
:mod:`detforge.formats.predictions.provenance`).

Numbers: ``bbox`` (pixels) and ``score`` are written as the shortest decimal that reads back
as the same float32 (what the detector computed in; e.g. ``241.00032``, never
``241.00032000000002``), so a file reads back to the detector's values exactly. Category ids:
the ground truth's COCO ids, ``1..K`` for datasets without ids of their own.

Darknet's ``coco_results.json`` (``detector valid`` with ``eval=coco``) is recognised by its
name or its ``printf`` layout: its ``category_id`` went through darknet's 80-entry
``coco_ids`` table (class 11 is written 13) and its ``image_id`` is the number a file name
starts with; both are mapped back.

Each result must hold a ``bbox`` of exactly 4 JSON numbers and a numeric ``score``; a box or
score that no evaluation can use (not finite, huge, a negative width or height:
:func:`~detforge.formats.predictions.align.value_problem`) is an error naming the result's
index in the list (``result #0`` is the first).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset
from detforge.errors import DetforgeError
from detforge.formats.predictions.align import (
    build_predictions,
    factorize,
    match_image_keys,
    new_unmatched,
    value_problem,
)
from detforge.formats.predictions.fastjson import parse_results
from detforge.formats.predictions.provenance import Provenance, write_provenance

DARKNET_COCO_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27,
    28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
    54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80,
    81, 82, 84, 85, 86, 87, 88, 89, 90,
)  # fmt: skip
"""darknet ``src/detector.c`` ``coco_ids``: the ``category_id`` it writes for class ``k``."""

_DARKNET_LAYOUT = re.compile(
    rb'\[\s*\{"image_id":-?\d+, "category_id":-?\d+, "bbox":\[(-?\d+\.\d{6}, ){3}-?\d+\.\d{6}\], '
    rb'"score":-?\d+\.\d{6}\}'
)


def float32_decimals(values: ArrayLike) -> NDArray[np.float64]:
    """Each value as the float64 of the shortest decimal that reads back as the same float32
    (``float32(241.00032)`` -> ``241.00032``), so JSON writes it without float64 noise."""
    a = np.ascontiguousarray(values, dtype=np.float32)
    if not np.isfinite(a).all():
        raise DetforgeError(f"{int((~np.isfinite(a)).sum())} box or score values are not finite")
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is optional
        return np.array([float(str(v)) for v in a.reshape(-1)], dtype=np.float64).reshape(a.shape)
    flat = orjson.loads(orjson.dumps(a.reshape(-1), option=orjson.OPT_SERIALIZE_NUMPY))
    return np.asarray(flat, dtype=np.float64).reshape(a.shape)


def coco_records(
    image_ids: ArrayLike,
    boxes: ArrayLike,
    classes: ArrayLike,
    scores: ArrayLike,
    category_ids: Sequence[int],
) -> list[dict[str, Any]]:
    """COCO result records: per box its ``image_id``, ``(K, 4)`` xyxy pixel box (written as
    ``[x, y, w, h]``), 0-based class (written as ``category_ids[class]``) and score."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    c = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(c) and (c.min() < 0 or c.max() >= len(category_ids)):
        raise ValueError(f"class ids must be 0..{len(category_ids) - 1}")
    xywh = float32_decimals(np.column_stack([b[:, :2], b[:, 2:] - b[:, :2]]))
    s = float32_decimals(np.asarray(scores, dtype=np.float64).reshape(-1))
    cats = np.asarray(category_ids, dtype=np.int64)[c].tolist()
    ids = np.asarray(image_ids, dtype=np.int64).reshape(-1).tolist()
    return [
        {"image_id": i, "category_id": k, "bbox": bb, "score": sc}
        for i, k, bb, sc in zip(ids, cats, xywh.tolist(), s.tolist(), strict=True)
    ]


def dataset_records(pred: Dataset, gt: Dataset | None = None) -> list[dict[str, Any]]:
    """Records of every box of a prediction dataset (ids from ``pred.images.id``, category ids
    of ``gt``, default ``pred``, see :func:`detforge.formats.coco.coco_category_ids`)."""
    from detforge.formats.coco import coco_category_ids

    if pred.boxes.format.normalized and pred.num_boxes:
        from detforge.formats.common import ensure_sizes

        pred = ensure_sizes(pred)
    return coco_records(
        pred.images.id[pred.boxes.image],
        pred.coords_as(BoxFormat.XYXY_PIXEL),
        pred.boxes.cls,
        pred.boxes.score,
        coco_category_ids(gt if gt is not None else pred),
    )


def write_coco_results(
    path: str | os.PathLike[str],
    records: Sequence[dict[str, Any]],
    *,
    provenance: Provenance | None = None,
) -> None:
    """Write records as a JSON list, one per line (diffs stay readable), atomically; with
    ``provenance`` also the sidecar ``<stem>.meta.json``."""
    from detforge.formats.coco import dump_json
    from detforge.utils.io import atomic_write_bytes

    body = b",\n".join(dump_json(r) for r in records)
    atomic_write_bytes(path, b"[\n" + body + b"\n]\n" if records else b"[]\n")
    if provenance is not None:
        write_provenance(path, provenance)


def is_darknet_results(path: Path, head: bytes) -> bool:
    """Darknet's ``coco_results.json``: by its name or by its ``printf`` layout."""
    return path.name == "coco_results.json" or bool(_DARKNET_LAYOUT.match(head.lstrip()))


def _rows(
    p: Path, raw: bytes
) -> tuple[list[Any] | NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """``(image keys, category ids, (n, 5) bbox + score)`` of a results file (keys an int64
    array when every ``image_id`` is an integer)."""
    fast = parse_results(raw)
    if fast is not None:
        vals, order = fast
        col: dict[str, int] = {}
        i = 0
        for k in order:
            col[k] = i
            i += 4 if k == "bbox" else 1
        ids, cat = vals[:, col["image_id"]], vals[:, col["category_id"]]
        if len(vals) == 0 or (
            np.abs(np.concatenate([ids, cat])).max() < 2**53
            and np.array_equal(ids, np.round(ids))
            and np.array_equal(cat, np.round(cat))
        ):  # integral ids that a float64 holds exactly; anything else goes through json
            b = col["bbox"]
            out = np.column_stack([vals[:, b : b + 4], vals[:, col["score"]]])
            return ids.astype(np.int64), cat.astype(np.int64), out
    from detforge.formats.coco import load_json

    data = load_json(p)
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list):
        raise DetforgeError(
            "expected a COCO results list [{image_id, category_id, bbox, score}, ...]", path=p
        )
    n = len(data)
    try:
        raw_ids = [d["image_id"] for d in data]
        int_ids = _integers(raw_ids)
        keys: list[Any] | NDArray[np.int64] = (
            int_ids if int_ids is not None else [_image_key(v) for v in raw_ids]
        )
        int_cats = _integers([d["category_id"] for d in data])
        if int_cats is None:
            raise ValueError("a category_id is not an integer")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DetforgeError(
            f"a result lacks an image_id or an integer category_id ({exc!r})", path=p
        ) from None
    vals = np.empty((n, 5), dtype=np.float64)
    for j, d in enumerate(data):
        bb, score = d.get("bbox"), d.get("score")
        if not (isinstance(bb, list) and len(bb) == 4 and all(map(_is_number, bb))):
            why = f"'bbox' must be 4 numbers [x, y, width, height], not {json.dumps(bb)[:60]}"
        elif not _is_number(score):
            why = f"'score' must be a number, not {json.dumps(score)[:30]}"
        else:
            try:
                vals[j] = (*bb, score)
                continue
            except OverflowError:
                why = "a 'bbox' or 'score' number is too large for a float"
        raise DetforgeError(f"result #{j}: {why}", path=p)
    return keys, int_cats, vals


def _is_number(v: Any) -> bool:
    """A JSON number (``true``/``false`` and numeric strings are not)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def _integers(values: list[Any]) -> NDArray[np.int64] | None:
    """``values`` as int64 when every one is an integer (``17`` or ``17.0``), else ``None``."""
    if any(isinstance(v, bool) for v in values):
        return None
    try:
        a = np.asarray(values)
    except ValueError:  # ragged: lists among numbers
        return None
    if a.ndim != 1 and len(values):
        return None
    if a.dtype.kind in "iu" or not len(values):
        return a.astype(np.int64)
    whole = a.dtype.kind == "f" and np.isfinite(a).all() and np.array_equal(a, np.round(a))
    if whole and np.abs(a).max(initial=0) < 2**53:
        return a.astype(np.int64)
    return None


def _image_key(v: Any) -> int | str:
    """An ``image_id`` as an int when it is one (``17``, ``17.0``), else its text."""
    if isinstance(v, int | float) and not isinstance(v, bool) and v == int(v):
        return int(v)
    if isinstance(v, str | int | float):
        return str(v)
    raise ValueError(f"image_id {v!r} is neither a number nor a string")


def read_coco_results(
    path: str | os.PathLike[str], gt: Dataset, *, provenance: Provenance | None = None
) -> Dataset:
    """A COCO results JSON as predictions on ``gt`` (see :mod:`...predictions.align`)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DetforgeError(f"cannot read predictions: {exc.strerror}", path=p) from None
    darknet = provenance is None and is_darknet_results(p, raw[:4096])
    keys, cat, vals = _rows(p, raw)
    del raw
    problem = value_problem(vals[:, :4], vals[:, 4], BoxFormat.XYWH_PIXEL)
    if problem is not None:  # index j of the results list, counted from 0
        j, why = problem
        bad = ", ".join(f"{v:g}" for v in vals[j, :4].tolist())
        raise DetforgeError(f"result #{j} (bbox [{bad}], score {vals[j, 4]:g}): {why}", path=p)
    unmatched = new_unmatched(len(keys))
    if isinstance(keys, np.ndarray):
        distinct, inv = factorize(keys)
        uniq: list[Any] = distinct.tolist()
    else:
        first: dict[Any, int] = {}
        inv = np.fromiter((first.setdefault(k, len(first)) for k in keys), np.int64, len(keys))
        uniq = list(first)
    rows = match_image_keys(
        uniq, gt, unmatched,
        recorded=provenance.images if provenance else None, darknet=darknet,
    )  # fmt: skip
    image = rows[inv.reshape(-1)] if len(keys) else np.zeros(0, dtype=np.int64)
    notes: list[str] = []
    if darknet:
        ids: Sequence[int] = DARKNET_COCO_IDS[: gt.num_classes]
        notes.append(
            "read as darknet's coco_results.json: category ids mapped back through darknet's "
            "coco_ids table, image ids are the numbers the file names start with"
        )
    elif provenance is not None and len(provenance.category_ids) == gt.num_classes:
        ids = provenance.category_ids
    else:
        from detforge.formats.coco import coco_category_ids

        ids = coco_category_ids(gt)
    cls = map_category_ids(cat, ids, gt.num_classes, unmatched, exact=darknet, notes=notes)
    meta = {"source": str(p), "provenance": provenance, "notes": notes}
    fmt = BoxFormat.XYWH_PIXEL
    return build_predictions(gt, image, cls, vals[:, :4], fmt, vals[:, 4], unmatched, meta)


def map_category_ids(
    cat: NDArray[np.int64],
    ids: Sequence[int],
    num_classes: int,
    unmatched: dict[str, Any],
    *,
    exact: bool = False,
    notes: list[str] | None = None,
) -> NDArray[np.int64]:
    """``category_id`` -> 0-based class through ``ids`` (class ``k`` is written ``ids[k]``),
    or as 0-based class ids when the file holds ids that only make sense that way (some
    exporters write ``class`` as is; not with ``exact``), which is said in ``notes``.
    Unknown ids are ``-1`` and listed."""
    lut = {int(c): k for k, c in enumerate(ids)}
    uniq, inv = factorize(np.asarray(cat, dtype=np.int64))
    present = set(uniq.tolist())
    if not exact and not present <= set(lut) and present <= set(range(num_classes)):
        lut = {k: k for k in range(num_classes)}
        if notes is not None:
            shown = ", ".join(str(c) for c in list(ids)[:3]) + (", ..." if len(ids) > 3 else "")
            notes.append(
                f"category ids {min(present)}..{max(present)} are not the ground truth's "
                f"category ids ({shown}) but fit 0..{num_classes - 1}: read as 0-based class "
                "indices (category_id 0 = the first class)"
            )
    out = np.array([lut.get(int(c), -1) for c in uniq], dtype=np.int64)[inv]
    unmatched["classes"] = sorted(int(c) for c in present if c not in lut)
    return out.astype(np.int64)
