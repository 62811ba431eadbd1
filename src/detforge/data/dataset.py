"""The one in-memory dataset type every detforge component shares.

A :class:`Dataset` is two column tables, a tuple of class names and, when the source numbers
its classes itself, its ``(name, id)`` pairs (``source_classes``, e.g. COCO categories):

* :class:`Images` -- one row per image: ``path`` (str), ``width``/``height`` (pixels, ``0`` when
  unknown), ``split`` (``"train"``, ``"valid"``, ``"test"``, any other name, or ``""``),
  ``group`` (sequence id for group-aware splits, ``""`` when none) and ``id`` (the source's image
  id, e.g. a COCO ``image_id``; ``0..N-1`` when the source has none).
* :class:`Boxes` -- one row per box: ``image`` (row index into :class:`Images`), ``cls``
  (0-based class id into ``class_names``), ``coords`` ``(M, 4)`` float64 in ``format``
  (a :class:`~detforge.data.boxes.BoxFormat`), and per-box flags ``crowd``, ``difficult``,
  ``truncated``, ``area`` (the source's own area field, NaN when it has none) and ``score``
  (NaN for ground truth, a confidence for predictions).

Readers build one with :func:`make_dataset`; everything downstream treats it as immutable and
returns new datasets (``select``, ``with_format`` ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detforge.data.boxes import BoxFormat, convert_boxes

SPLITS: tuple[str, ...] = ("train", "valid", "test")
"""Canonical split names; readers map aliases (``val`` -> ``valid``), see ``canonical_split``."""

_SPLIT_ALIASES = {"val": "valid", "validation": "valid", "eval": "valid", "trainval": "trainval"}


def canonical_split(name: str) -> str:
    """Map a split name from any framework to detforge's (``val`` -> ``valid``)."""
    low = name.strip().lower()
    return _SPLIT_ALIASES.get(low, low)


def _obj(values: Iterable[Any]) -> NDArray[np.object_]:
    """A 1-D object array of ``values`` (numpy would otherwise make fixed-width strings)."""
    vals = list(values)
    arr = np.empty(len(vals), dtype=object)
    arr[:] = vals
    return arr


@dataclass(frozen=True, eq=False)
class Images:
    """Column table of images; every array has shape ``(N,)``."""

    path: NDArray[np.object_]
    width: NDArray[np.int64]
    height: NDArray[np.int64]
    split: NDArray[np.object_]
    group: NDArray[np.object_]
    id: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.path)

    def take(self, idx: NDArray[np.int64]) -> Images:
        return Images(**{k: getattr(self, k)[idx] for k in _IMAGE_COLUMNS})


_IMAGE_COLUMNS = ("path", "width", "height", "split", "group", "id")


@dataclass(frozen=True, eq=False)
class Boxes:
    """Column table of boxes; ``coords`` is ``(M, 4)``, every other array ``(M,)``."""

    image: NDArray[np.int64]
    cls: NDArray[np.int64]
    coords: NDArray[np.float64]
    format: BoxFormat
    crowd: NDArray[np.bool_]
    difficult: NDArray[np.bool_]
    truncated: NDArray[np.bool_]
    area: NDArray[np.float64]
    score: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.image)

    def take(self, idx: NDArray[np.int64]) -> Boxes:
        cols = {k: getattr(self, k)[idx] for k in _BOX_COLUMNS}
        return Boxes(format=self.format, **cols)


_BOX_COLUMNS = ("image", "cls", "coords", "crowd", "difficult", "truncated", "area", "score")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images, boxes and class names. See the module docstring for the columns."""

    class_names: tuple[str, ...]
    images: Images
    boxes: Boxes
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance (source path, reader notes); never needed to interpret the data."""
    source_classes: tuple[tuple[str, int], ...] | None = None
    """The classes as the source numbers them: ``(name, id)`` pairs in the source's order (COCO
    categories by ``category_id``); ``None`` when the source has no ids of its own (writers then
    number classes ``1..K``). While ``class_names`` are the source's names, class ``k`` is id
    ``source_classes[k][1]``; after classes are renamed, reordered or added, ids follow the
    names (:func:`detforge.formats.coco.coco_category_ids`). Kept by ``select``, ``split``,
    ``with_format`` and ``replace``."""

    # ----------------------------------------------------------------- basic facts
    @property
    def num_images(self) -> int:
        return len(self.images)

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def splits(self) -> list[str]:
        """Split names present, canonical ones first in ``train, valid, test`` order."""
        present = set(self.images.split.tolist())
        ordered = [s for s in SPLITS if s in present]
        return ordered + sorted(present - set(SPLITS))

    def boxes_per_image(self) -> NDArray[np.int64]:
        """``(N,)`` number of boxes on each image."""
        return np.bincount(self.boxes.image, minlength=self.num_images).astype(np.int64)

    # ----------------------------------------------------------------- conversions
    def coords_as(self, fmt: BoxFormat) -> NDArray[np.float64]:
        """Box coordinates ``(M, 4)`` in ``fmt``, using each box's image size when needed."""
        img = self.boxes.image
        return convert_boxes(
            self.boxes.coords,
            self.boxes.format,
            BoxFormat(fmt),
            widths=self.images.width[img],
            heights=self.images.height[img],
        )

    def with_format(self, fmt: BoxFormat) -> Dataset:
        """The same dataset with coordinates stored in ``fmt``."""
        fmt = BoxFormat(fmt)
        if fmt is self.boxes.format:
            return self
        if fmt.normalized != self.boxes.format.normalized and len(self.boxes):
            used = np.unique(self.boxes.image)
            if np.any(self.images.width[used] <= 0) or np.any(self.images.height[used] <= 0):
                raise ValueError(
                    "image sizes are unknown for some boxed images; read sizes first "
                    "(detforge.data.imagesize.read_sizes) to change between normalized "
                    "and pixel boxes"
                )
        boxes = replace(self.boxes, coords=self.coords_as(fmt), format=fmt)
        return replace(self, boxes=boxes)

    def select(self, image_idx: ArrayLike) -> Dataset:
        """A dataset of the given images (indices or a boolean mask), boxes re-indexed;
        the :data:`PER_IMAGE_META` lists follow the images (other ``meta`` is kept whole)."""
        idx = np.asarray(image_idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        remap = np.full(self.num_images, -1, dtype=np.int64)
        remap[idx] = np.arange(len(idx), dtype=np.int64)
        keep = np.flatnonzero(remap[self.boxes.image] >= 0)
        boxes = self.boxes.take(keep)
        # Keep boxes grouped in the new image order (stable within an image).
        new_img = remap[boxes.image]
        order = np.argsort(new_img, kind="stable")
        boxes = boxes.take(order)
        boxes = replace(boxes, image=new_img[order])
        meta = _select_meta(self, idx.tolist())
        return replace(self, images=self.images.take(idx), boxes=boxes, meta=meta)

    def split(self, name: str) -> Dataset:
        """Only the images of split ``name`` (canonicalised, so ``val`` finds ``valid``)."""
        return self.select(self.images.split == canonical_split(name))

    def with_splits(self, split: ArrayLike) -> Dataset:
        """The same dataset with a new ``(N,)`` split column."""
        return replace(self, images=replace(self.images, split=_obj(np.asarray(split).tolist())))

    def validate(self) -> None:
        """Raise ``ValueError`` if the column tables are inconsistent (a programming error)."""
        n, m = self.num_images, self.num_boxes
        for k in _IMAGE_COLUMNS:
            if len(getattr(self.images, k)) != n:
                raise ValueError(f"images.{k} has length {len(getattr(self.images, k))}, not {n}")
        for k in _BOX_COLUMNS:
            if len(getattr(self.boxes, k)) != m:
                raise ValueError(f"boxes.{k} has length {len(getattr(self.boxes, k))}, not {m}")
        if self.boxes.coords.shape != (m, 4):
            raise ValueError(f"boxes.coords has shape {self.boxes.coords.shape}, not ({m}, 4)")
        if m and (self.boxes.image.min() < 0 or self.boxes.image.max() >= n):
            raise ValueError("boxes.image holds an index outside the image table")
        ids = [i for _, i in self.source_classes or ()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"source_classes {self.source_classes} repeats an id")


def make_dataset(
    class_names: Sequence[str],
    *,
    paths: Sequence[str],
    widths: ArrayLike | None = None,
    heights: ArrayLike | None = None,
    splits: Sequence[str] | str | None = None,
    groups: Sequence[str] | None = None,
    image_ids: ArrayLike | None = None,
    box_image: ArrayLike = (),
    box_cls: ArrayLike = (),
    box_coords: ArrayLike | None = None,
    box_format: BoxFormat = BoxFormat.CXCYWH_NORM,
    crowd: ArrayLike | None = None,
    difficult: ArrayLike | None = None,
    truncated: ArrayLike | None = None,
    area: ArrayLike | None = None,
    score: ArrayLike | None = None,
    meta: dict[str, Any] | None = None,
    source_classes: Sequence[tuple[str, int]] | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from plain sequences, filling defaults for missing columns.

    ``splits`` may be one name for every image. Unknown sizes are ``0``. Boxes are stored
    sorted by image (stable), which every reader and writer relies on.
    """
    n = len(paths)
    m = len(np.asarray(box_image))

    def col(v: ArrayLike | None, size: int, dtype: Any, fill: Any) -> NDArray[Any]:
        if v is None:
            return np.full(size, fill, dtype=dtype)
        return np.asarray(v, dtype=dtype).reshape(size)

    if isinstance(splits, str) or splits is None:
        split_col = _obj([splits or ""] * n)
    else:
        canon = {s: canonical_split(s) for s in set(splits)}  # few distinct names
        split_col = _obj([canon[s] for s in splits])
    images = Images(
        path=_obj([str(p) for p in paths]),
        width=col(widths, n, np.int64, 0),
        height=col(heights, n, np.int64, 0),
        split=split_col,
        group=_obj(groups) if groups is not None else _obj([""] * n),
        id=col(image_ids, n, np.int64, 0)
        if image_ids is not None
        else np.arange(n, dtype=np.int64),
    )
    coords = (
        np.zeros((0, 4), dtype=np.float64)
        if box_coords is None
        else np.asarray(box_coords, dtype=np.float64).reshape(m, 4)
    )
    boxes = Boxes(
        image=col(box_image, m, np.int64, 0),
        cls=col(box_cls, m, np.int64, 0),
        coords=coords,
        format=BoxFormat(box_format),
        crowd=col(crowd, m, np.bool_, False),
        difficult=col(difficult, m, np.bool_, False),
        truncated=col(truncated, m, np.bool_, False),
        area=col(area, m, np.float64, np.nan),
        score=col(score, m, np.float64, np.nan),
    )
    if m and np.any(np.diff(boxes.image) < 0):
        boxes = boxes.take(np.argsort(boxes.image, kind="stable"))
    src = None if source_classes is None else tuple((str(n), int(i)) for n, i in source_classes)
    ds = Dataset(tuple(class_names), images, boxes, dict(meta or {}), src)
    ds.validate()
    return ds


STACKED_META = (
    "invalid_boxes",
    "unscorable_boxes",
    "repeated_entries",
    "notes",
    "warnings",
    "coco_image_info",
    "coco_shapes",
    "voc_extras",
)
"""``meta`` lists of what a reader left out or noted, entry by entry: :func:`concat_datasets`
stacks them (a part without one adds nothing); ``select`` keeps them whole."""
PER_IMAGE_META = ("label_paths", "xml_paths", "json_paths", "records")
"""``meta`` lists with one entry per image, where the reader found its annotation: its
Darknet/Ultralytics label file (``""`` when none), VOC XML file, COCO JSON file or
``(record file, record number)``. ``select`` keeps the selected images' entries;
:func:`concat_datasets` stacks them when every part has them and drops them otherwise.
Read them with :func:`per_image`."""


def per_image(ds: Dataset, key: str) -> list[Any] | None:
    """``ds.meta[key]``, a :data:`PER_IMAGE_META` list, when it holds one entry per image of
    ``ds`` (else ``None``: the reader keeps none, or ``ds`` was not cut by ``select``)."""
    values = ds.meta.get(key)
    return list(values) if values is not None and len(values) == ds.num_images else None


def source_of(ds: Dataset) -> str | None:
    """The file to name for a fact about all of ``ds`` (no boxes, no annotations): the one
    COCO JSON or record file every image came from (a split of a folder of per-split files),
    else ``meta["source"]`` (the file or folder read; ``None`` when unknown)."""
    for files in (per_image(ds, "json_paths"), [f for f, _ in per_image(ds, "records") or ()]):
        if files and len(set(files)) == 1:
            return str(files[0])
    source = ds.meta.get("source")
    return None if source is None else str(source)


def _select_meta(ds: Dataset, idx: list[int]) -> dict[str, Any]:
    """``ds.meta`` for ``ds.select(idx)``: each :data:`PER_IMAGE_META` list cut to the images
    ``idx`` (one that is not one entry per image is dropped: it belongs to other images)."""
    meta = dict(ds.meta)
    for key in PER_IMAGE_META:
        if key in meta:
            values = per_image(ds, key)
            if values is None:
                del meta[key]
            else:
                meta[key] = [values[i] for i in idx]
    return meta


def concat_datasets(parts: Sequence[Dataset]) -> Dataset:
    """Stack datasets that share class names and box format (e.g. one per split);
    ``source_classes`` are kept when every part has the same; ``meta``: see
    :func:`_merge_meta`."""
    if not parts:
        raise ValueError("nothing to concatenate")
    first = parts[0]
    if any(p.class_names != first.class_names for p in parts):
        raise ValueError("cannot concatenate datasets with different class names")
    offsets = np.cumsum([0] + [p.num_images for p in parts[:-1]])
    img_cols = {k: np.concatenate([getattr(p.images, k) for p in parts]) for k in _IMAGE_COLUMNS}
    parts_f = [
        p if p.boxes.format is first.boxes.format else p.with_format(first.boxes.format)
        for p in parts
    ]
    box_cols: dict[str, Any] = {
        k: np.concatenate([getattr(p.boxes, k) for p in parts_f]) for k in _BOX_COLUMNS
    }
    box_cols["image"] = np.concatenate(
        [p.boxes.image + o for p, o in zip(parts_f, offsets, strict=False)]
    )
    box_cols["coords"] = box_cols["coords"].reshape(-1, 4)
    return Dataset(
        first.class_names,
        Images(**img_cols),
        Boxes(format=first.boxes.format, **box_cols),
        _merge_meta(parts),
        first.source_classes
        if all(p.source_classes == first.source_classes for p in parts)
        else None,
    )


def _merge_meta(parts: Sequence[Dataset]) -> dict[str, Any]:
    """The ``meta`` of :func:`concat_datasets`: :data:`STACKED_META` lists stacked in part
    order, :data:`PER_IMAGE_META` lists too when every part has them (else left out), any
    other value the last part's that has it."""
    meta: dict[str, Any] = {}
    for p in parts:
        meta.update(p.meta)
    for key in STACKED_META:
        if any(key in p.meta for p in parts):
            meta[key] = [e for p in parts for e in p.meta.get(key) or []]
    for key in PER_IMAGE_META:
        if all(key in p.meta for p in parts):
            meta[key] = [e for p in parts for e in p.meta[key]]
        else:
            meta.pop(key, None)
    return meta
