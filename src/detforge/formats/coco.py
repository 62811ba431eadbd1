"""COCO instances JSON: ``read_coco`` / ``write_coco`` around :class:`Dataset`.

Boxes are kept exactly as the file holds them: ``XYWH_PIXEL`` (left, top, width, height in
continuous pixels), the annotation ``area`` field (used by the COCO protocol's area ranges),
``iscrowd`` as ``boxes.crowd`` and the image ``id`` as ``images.id``. Category ids are mapped to
0-based class ids in increasing id order (the order pycocotools evaluates them in); the
original ids are the dataset's ``source_classes`` (:func:`coco_category_ids`), so that
results files, evaluation and writers translate back.

Layout written by :func:`write_coco` (and recognised by :func:`read_coco`)::

    out_dir/annotations/instances_<split>.json    # val for detforge's "valid"
    out_dir/<split>/<image files>
"""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, canonical_split, make_dataset
from detforge.data.validity import (
    CODES,
    InvalidBox,
    box_codes,
    parse_size,
    screen_boxes,
    size_ok,
)
from detforge.errors import DetforgeError
from detforge.utils.io import ImageMode, atomic_write_bytes, place_file

PathLike = str | os.PathLike[str]


def load_json(path: PathLike) -> Any:
    """Parse a JSON file with ``orjson`` when installed (several times faster), else ``json``.

    A missing or malformed file is a :class:`DetforgeError` naming it.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DetforgeError("file not found", path=p) from None
    except OSError as exc:
        raise DetforgeError(f"cannot read file: {exc.strerror}", path=p) from None
    try:
        import orjson

        loads: Any = orjson.loads
    except ImportError:  # pragma: no cover - orjson is optional
        loads = json.loads
    try:
        return loads(data)
    except ValueError as exc:
        raise DetforgeError(f"not valid JSON ({exc}); is the file complete?", path=p) from None
    except RecursionError:
        raise DetforgeError("JSON nested too deeply", path=p) from None


def dump_json(obj: Any) -> bytes:
    """Serialise ``obj`` (plain Python values) to compact UTF-8 JSON bytes."""
    try:
        import orjson

        return bytes(orjson.dumps(obj))
    except ImportError:  # pragma: no cover - orjson is optional
        return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _split_from_name(stem: str) -> str:
    """``instances_val2017`` -> ``valid``; ``instances_train`` -> ``train``; else ``""``."""
    low = stem.lower()
    for key, split in (("train", "train"), ("val", "valid"), ("test", "test")):
        if key in low:
            return split
    return ""


def _default_images_dir(json_path: Path) -> Path:
    """``annotations/instances_X.json`` -> ``../X`` when it exists, else the JSON's folder."""
    stem = json_path.stem
    sub = stem.split("_", 1)[1] if stem.startswith("instances_") else stem
    parent = json_path.parent
    for cand in (parent.parent / sub, parent / sub):
        if parent.name == "annotations" and cand.is_dir():
            return cand
    return parent


def _is_number(v: Any) -> bool:
    """A JSON number (``true``/``false`` and numeric strings are not)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def _annotation_problem(a: Any) -> str | None:
    """What is wrong with an annotation's ``bbox``, ``iscrowd`` or ``area`` field (``None``
    when nothing): a bbox of exactly 4 JSON numbers (``null``: judged by the box rule),
    ``iscrowd`` 0 or 1, ``area`` a finite number >= 0 (or absent)."""
    if not isinstance(a, dict):
        return f"an annotation must be an object, not {json.dumps(a)[:40]}"
    bb = a.get("bbox")
    if not (isinstance(bb, list) and len(bb) == 4 and all(v is None or _is_number(v) for v in bb)):
        return f"'bbox' must be 4 numbers [x, y, width, height], not {json.dumps(bb)[:60]}"
    crowd = a.get("iscrowd", 0)
    if crowd not in (0, 1, None):
        return f"'iscrowd' must be 0 or 1, not {json.dumps(crowd)[:30]}"
    area = a.get("area")
    if area is not None and not (_is_number(area) and 0 <= area < math.inf):
        return f"'area' must be a number >= 0, not {json.dumps(area)[:30]}"
    return None


def _read_annotations_slowly(
    anns: list[Any], path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """Annotation columns one by one, raising a :class:`DetforgeError` naming the bad one."""
    m = len(anns)
    ann_img = np.empty(m, dtype=np.int64)
    ann_cat = np.empty(m, dtype=np.int64)
    coords = np.empty((m, 4), dtype=np.float64)
    crowd = np.zeros(m, dtype=bool)
    area = np.full(m, np.nan)
    for j, a in enumerate(anns):
        try:
            why = _annotation_problem(a)
            if why is None:
                ann_img[j] = int(a["image_id"])
                ann_cat[j] = int(a["category_id"])
                coords[j] = [np.nan if v is None else float(v) for v in a["bbox"]]  # judged below
                crowd[j] = bool(a.get("iscrowd", 0))
                if a.get("area") is not None:
                    area[j] = float(a["area"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            why = f"lacks a valid image_id, category_id or bbox ({exc!r})"
        if why is not None:
            ident = a.get("id") if isinstance(a, dict) else "?"
            raise DetforgeError(f"annotation #{j} (id {ident}): {why}", path=path)
    return ann_img, ann_cat, coords, crowd, area


def _shapes(anns: list[Any], path: Path) -> list[dict[str, Any]]:
    """``meta["coco_shapes"]``: ``[{"path", "masks", "keypoints", "first"}]`` when annotations
    of ``path`` hold a non-empty ``segmentation`` or ``keypoints`` (detforge keeps boxes
    only; ``first`` is the first such annotation's id), else ``[]``."""
    masks = [bool(a.get("segmentation")) if isinstance(a, dict) else False for a in anns]
    points = [bool(a.get("keypoints")) if isinstance(a, dict) else False for a in anns]
    if not any(masks) and not any(points):
        return []
    first = next(a for a, m, k in zip(anns, masks, points, strict=True) if m or k)
    return [
        {"path": str(path), "masks": sum(masks), "keypoints": sum(points), "first": first.get("id")}
    ]


def _plain_annotations(
    boxes: list[Any],
    coords: np.ndarray,  # type: ignore[type-arg]
    crowd: list[Any],
    area: list[Any],
) -> bool:
    """Whether the fast path's columns are exactly what the file says: the ``bbox`` lists
    (``coords``: as numpy made them) numeric ``(m, 4)`` without booleans, ``iscrowd`` 0/1,
    ``area`` a number >= 0 or absent (anything else: :func:`_read_annotations_slowly` names
    it). Type checks run over whole columns at C speed (``set(map(type, ...))``)."""
    m = len(boxes)
    if coords.shape != (m, 4) or (m and coords.dtype.kind not in "iuf"):
        return False
    if bool in set(map(type, itertools.chain.from_iterable(boxes))):
        return False
    try:
        if not set(crowd) <= {0, 1, None}:
            return False
    except TypeError:  # unhashable: a list or object
        return False
    if not set(map(type, area)) <= {int, float, type(None)}:
        return False
    a = np.array([np.nan if v is None else v for v in area], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isnan(a) | ((a >= 0) & (a < np.inf))))


# Over 80 lines on purpose: one pass from the JSON's tables to the Dataset columns, in order.
def read_coco(
    json_path: PathLike, *, images_dir: PathLike | None = None, split: str | None = None
) -> Dataset:
    """Read a COCO instances JSON into a :class:`Dataset` (boxes in ``XYWH_PIXEL``).

    ``images_dir`` is where ``file_name`` is resolved (default: ``../<X>`` for
    ``annotations/instances_<X>.json`` when that folder exists, else the JSON's folder).
    ``split`` names the split of every image (default: guessed from the file name,
    ``instances_val2017.json`` -> ``valid``). Annotations without a ``bbox`` (captions,
    keypoints without boxes) are an error; a missing ``area`` is NaN (evaluators then use the
    box area); ``iscrowd`` becomes ``boxes.crowd``. A ``bbox`` that is not 4 numbers, an
    ``iscrowd`` other than 0/1 or a negative ``area`` is an error naming the annotation.

    Boxes the one rule refuses (:mod:`detforge.data.validity`) are left out and listed in
    ``meta["invalid_boxes"]``; those refused for another reason than a zero width or height
    (not finite, huge, negative size) are also in ``meta["unscorable_boxes"]`` (their
    ``detail`` says why), and ``meta["coco_image_info"]`` lists the file when it has no
    ``annotations`` at all (an image-info / test-dev file; ``[]`` otherwise): evaluation
    refuses both as ground truth (:func:`detforge.eval.api.check_ground_truth`).
    ``meta["json_paths"]`` names the JSON file per image (it stays right when a folder's
    per-split files are read into one dataset).
    """
    path = Path(json_path)
    data = load_json(path)
    if not isinstance(data, dict) or "images" not in data:
        raise DetforgeError(
            "not a COCO instances file: expected an object with 'images', 'annotations' and "
            "'categories' (a results list goes to detforge eval as predictions)",
            path=path,
        )
    imgs, anns, cats = (
        _list_field(data, key, path) for key in ("images", "annotations", "categories")
    )
    root = Path(images_dir) if images_dir is not None else _default_images_dir(path)
    split_name = canonical_split(split) if split is not None else _split_from_name(path.stem)

    try:
        cat_ids = sorted(_int_id(c["id"]) for c in cats)
        names_by_id = {_int_id(c["id"]): str(c.get("name", c["id"])) for c in cats}
        img_ids = np.array([_int_id(im["id"]) for im in imgs], dtype=np.int64)
        files = [str(im.get("file_name", im["id"])) for im in imgs]
        stated_w = [parse_size(im.get("width")) for im in imgs]
        stated_h = [parse_size(im.get("height")) for im in imgs]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise DetforgeError(f"malformed image or category entry ({exc!r})", path=path) from None
    _refuse_escaping_names(files, img_ids, root, path)
    if len(set(cat_ids)) != len(cat_ids):
        raise DetforgeError("duplicate category ids in 'categories'", path=path)
    if len(np.unique(img_ids)) != len(img_ids):
        raise DetforgeError("duplicate image ids in 'images'", path=path)

    order = np.argsort(img_ids, kind="stable")
    id_sorted = img_ids[order]
    cls_of_cat = {cid: k for k, cid in enumerate(cat_ids)}
    m = len(anns)
    try:  # fast path: well-formed annotations, read column by column
        ann_img = np.fromiter((a["image_id"] for a in anns), dtype=np.int64, count=m)
        ann_cat = np.fromiter((a["category_id"] for a in anns), dtype=np.int64, count=m)
        boxes = [a["bbox"] for a in anns]
        coords = np.array(boxes)
        crowd_raw = [a.get("iscrowd", 0) for a in anns]
        area_raw = [a.get("area") for a in anns]
        if not _plain_annotations(boxes, coords, crowd_raw, area_raw):
            raise ValueError("not plain: each annotation is checked below")
        coords = coords.astype(np.float64).reshape(m, 4)
        crowd = np.fromiter(map(bool, crowd_raw), dtype=bool, count=m)
        area = np.fromiter(
            (v if v is not None else np.nan for v in area_raw), dtype=np.float64, count=m
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        ann_img, ann_cat, coords, crowd, area = _read_annotations_slowly(anns, path)
    uc, inv = np.unique(ann_cat, return_inverse=True)
    box_cls = np.array([cls_of_cat.get(int(c), -1) for c in uc], dtype=np.int64)[inv.reshape(-1)]
    if m and (box_cls < 0).any():
        j = int(np.flatnonzero(box_cls < 0)[0])
        raise DetforgeError(
            f"annotation #{j} has category_id {int(ann_cat[j])}, which 'categories' does not list",
            path=path,
        )
    box_image = np.empty(m, dtype=np.int64)
    pos = np.searchsorted(id_sorted, ann_img)
    pos = np.minimum(pos, max(len(id_sorted) - 1, 0))
    bad = np.flatnonzero(id_sorted[pos] != ann_img) if len(id_sorted) else np.arange(m, dtype=int)
    if len(bad):
        raise DetforgeError(
            f"{len(bad)} annotation(s) refer to image ids that 'images' does not list "
            f"(first: image_id {int(ann_img[bad[0]])})",
            path=path,
        )
    box_image[:] = order[pos] if m else box_image

    paths = [os.path.join(root, f) for f in files]
    widths, heights, bad_sizes = _sizes(stated_w, stated_h, img_ids, path, paths, split_name)
    meta: dict[str, Any] = {
        "source": str(path),
        "format": "coco",
        "json_paths": [str(path)] * len(paths),
        "invalid_boxes": bad_sizes,
        "coco_image_info": [str(path)] if data.get("annotations") is None else [],
        "coco_shapes": _shapes(anns, path),
    }
    for key in ("info", "licenses"):
        if key in data:
            meta[f"coco_{key}"] = data[key]
    ds = make_dataset(
        [names_by_id[c] for c in cat_ids],
        paths=paths,
        widths=widths,
        heights=heights,
        splits=split_name,
        image_ids=img_ids,
        box_image=box_image,
        box_cls=box_cls,
        box_coords=coords,
        box_format=BoxFormat.XYWH_PIXEL,
        crowd=crowd,
        area=area,
        meta=meta,
        source_classes=[(names_by_id[c], c) for c in cat_ids],
    )

    # make_dataset orders boxes by image (stable): box j of ds is annotation file_order[j]
    file_order = np.argsort(box_image, kind="stable") if m else np.zeros(0, dtype=np.int64)

    def where(j: int) -> tuple[str, str, str]:
        k = int(file_order[j])
        box = ", ".join(f"{v:g}" for v in coords[k].tolist())
        name = names_by_id.get(int(ann_cat[k]), "?")
        rec = f"annotation #{k} (id {anns[k].get('id')})"
        return str(path), rec, f"{name!r} box bbox=[{box}]"

    codes = box_codes(ds.boxes.coords)
    out = screen_boxes(ds, codes, where=where)
    with np.errstate(invalid="ignore"):  # zero-size boxes are legal COCO (pycocotools scores
        zero = (codes == "box-zero-size") & (ds.boxes.coords[:, 2:] >= 0).all(axis=1)  # them)
    unscorable = np.flatnonzero((codes != "") & ~zero)
    if len(unscorable):
        negative = "a box has a negative width or height"
        out.meta["unscorable_boxes"] = [
            InvalidBox(
                str(codes[j]), str(path), rec,
                f"{detail}: {negative if codes[j] == 'box-zero-size' else CODES[codes[j]]}",
                paths[int(ds.boxes.image[j])], split_name,
            )
            for j in unscorable.tolist()
            for _, rec, detail in [where(j)]
        ]  # fmt: skip
    return out


def _refuse_escaping_names(
    files: list[str],
    img_ids: np.ndarray,  # type: ignore[type-arg]
    root: Path,
    path: Path,
) -> None:
    """A :class:`DetforgeError` naming the JSON and the image entry when a ``file_name`` is
    absolute or leads out of the images folder (``../../etc/hostname``): COCO names are
    relative to it, and detforge never links or copies files from elsewhere."""
    base = os.path.normpath(os.path.abspath(root))
    for i, name in enumerate(files):
        unified = name.replace("\\", "/")
        full = os.path.normpath(os.path.join(base, name))
        if (
            os.path.isabs(name)
            or unified.startswith("/")
            or (len(unified) > 1 and unified[1] == ":")
            or os.path.commonpath([base, full]) != base
        ):
            raise DetforgeError(
                f"image #{i} (id {int(img_ids[i])}): file_name {name!r} is not a path inside "
                f"the images folder {root} (absolute, or it leads out with '..'); COCO file "
                "names are relative to --images-dir",
                path=path,
            )


def _list_field(data: dict[str, Any], key: str, path: Path) -> list[Any]:
    """``data[key]`` as a list (missing/null -> empty); anything else is a DetforgeError."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DetforgeError(
            f"'{key}' must be a list, got {type(value).__name__} ({str(value)[:40]})", path=path
        )
    return value


def _int_id(value: Any) -> int:
    """A COCO id: an integer (or an integral number / digit string) within int64."""
    if isinstance(value, bool):
        raise ValueError(f"id {value!r} is not a number")
    out = int(value)
    if isinstance(value, float) and out != value:
        raise ValueError(f"id {value!r} is not a whole number")
    if not -(2**63) <= out < 2**63:
        raise ValueError(f"id {value!r} is too large")
    return out


def _sizes(
    stated_w: list[float],
    stated_h: list[float],
    img_ids: np.ndarray,  # type: ignore[type-arg]
    path: Path,
    paths: list[str],
    split: str,
) -> tuple[list[int], list[int], list[InvalidBox]]:
    """Stated image sizes checked by the one rule: impossible ones become unknown (0); each
    listed with its image (``paths``) and ``split``."""
    widths, heights, bad = [], [], []
    for i, (w, h) in enumerate(zip(stated_w, stated_h, strict=True)):
        if size_ok(w) and size_ok(h):
            widths.append(int(w))
            heights.append(int(h))
            continue
        widths.append(0)
        heights.append(0)
        bad.append(
            InvalidBox(
                "image-size-impossible",
                str(path),
                f"image #{i} (id {int(img_ids[i])})",
                f"width={w:g} height={h:g}",
                paths[i],
                split,
            )
        )
    return widths, heights, bad


def coco_category_ids(ds: Dataset) -> list[int]:
    """The COCO category id of each class (from ``ds.source_classes``).

    For a dataset read from COCO with its classes unchanged: the source's ids. If the classes
    changed since (renamed, subset, reordered), categories are matched by name: the source's id
    for a name it had, new ids above the source's for new names. Otherwise ``1..K``.
    """
    src = ds.source_classes
    if src is None:
        return list(range(1, ds.num_classes + 1))
    if tuple(n for n, _ in src) == ds.class_names:
        return [i for _, i in src]
    by_name: dict[str, int] = {}
    for name, cid in src:
        by_name.setdefault(name, cid)
    out: list[int] = []
    nxt = max(by_name.values(), default=0) + 1
    for name in ds.class_names:
        got = by_name.get(name)
        if got is None or got in out:
            got, nxt = nxt, nxt + 1
        out.append(got)
    return out


def _num(x: float) -> float | int:
    """A JSON-friendly number: integral floats stay floats (COCO writes 12.0 as 12.0), and
    rounded to 10 decimals, which no source holds more of, so the float64 noise of converting
    (``0.287011 * 1280 = 367.37408000000005``) is not written: ``367.37408``."""
    return round(float(x), 10) if math.isfinite(x) else 0.0


def coco_dict(ds: Dataset, *, file_names: list[str] | None = None) -> dict[str, Any]:
    """The COCO instances dict of ``ds`` (all its images), boxes as ``[x, y, w, h]`` pixels.

    ``area`` is the source's field when it has one, else ``w * h``; ``iscrowd`` is the crowd
    flag; annotation ids are ``1..M``. Image sizes must be known for normalized boxes.
    """
    from detforge.formats.common import ensure_sizes

    if ds.boxes.format is BoxFormat.CXCYWH_NORM:
        ds = ensure_sizes(ds)
    xywh = ds.coords_as(BoxFormat.XYWH_PIXEL)
    area = ds.boxes.area.copy()
    missing = ~np.isfinite(area)
    area[missing] = xywh[missing, 2] * xywh[missing, 3]
    cat_ids = coco_category_ids(ds)
    names = file_names if file_names is not None else [str(p) for p in ds.images.path]
    images = [
        {"id": int(i), "file_name": n, "width": int(w), "height": int(h)}
        for i, n, w, h in zip(
            ds.images.id.tolist(), names, ds.images.width, ds.images.height, strict=True
        )
    ]
    img_ids = ds.images.id.tolist()
    annotations = [
        {
            "id": j + 1,
            "image_id": img_ids[im],
            "category_id": cat_ids[c],
            "bbox": [_num(v) for v in b],
            "area": _num(a),
            "iscrowd": int(cr),
        }
        for j, (im, c, b, a, cr) in enumerate(
            zip(
                ds.boxes.image.tolist(),
                ds.boxes.cls.tolist(),
                xywh.tolist(),
                area.tolist(),
                ds.boxes.crowd.tolist(),
                strict=True,
            )
        )
    ]
    categories = [
        {"id": cid, "name": name, "supercategory": "none"}
        for cid, name in zip(cat_ids, ds.class_names, strict=True)
    ]
    info = ds.meta.get("coco_info") or {"description": "written by detforge"}
    licenses = ds.meta.get("coco_licenses") or []
    return {
        "info": info,
        "licenses": licenses,
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco(ds: Dataset, out_dir: PathLike, *, images: ImageMode = "link") -> dict[str, Path]:
    """Write ``ds`` as COCO: ``annotations/instances_<split>.json`` per split, images beside.

    Images go to ``out_dir/<split>/`` (``link``, ``copy`` or ``none``) under unique base
    names; ``valid`` is written as ``val``, an unnamed split as ``all``. Categories keep the
    source's ids when it had them (``ds.source_classes``), else ``1..K``, in class
    order. Returns ``{split: json_path}``. Every file is written atomically.
    """
    from detforge.formats.common import split_file_name, unique_file_names

    out = Path(out_dir)
    written: dict[str, Path] = {}
    splits = ds.splits() or [""]
    for split in splits:
        part = ds.select(ds.images.split == split) if len(splits) > 1 or split else ds
        sname = split_file_name(split)
        names = unique_file_names([str(p) for p in part.images.path])
        for src, name in zip(part.images.path.tolist(), names, strict=True):
            place_file(src, out / sname / name, images)
        json_path = out / "annotations" / f"instances_{sname}.json"
        atomic_write_bytes(json_path, dump_json(coco_dict(part, file_names=names)))
        written[split] = json_path
    return written
