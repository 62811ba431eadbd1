"""What ``convert`` verifies against the real images before it writes anything.

A reader trusts its annotation files; a writer that links images and writes sizes and boxes
must not. :func:`verify_images` applies ``detforge check``'s own rules (the image integrity
checks of :mod:`detforge.check.images`, the stated-size rule of
:func:`~detforge.data.validity.stated_size_matches`, the border rule of
:func:`~detforge.data.validity.border_codes`) and turns what they call errors into one-line
:class:`DetforgeError`\\ s naming the annotation file and entry:

* every image that exists must be a readable image (never link or copy anything else: a
  text file, ``/etc/passwd``, a truncated JPEG); a missing one is an error unless no images
  are placed (``images="none"``);
* a stated image size must be the image's (as stored or as displayed after EXIF rotation);
  ``trust_size="image"`` replaces it by the real size (boxes keep their values as written),
  ``trust_size="annotation"`` keeps it;
* Darknet/Ultralytics labels (fractions without a stated size) on an EXIF-rotated image are
  refused for pixel targets (COCO, VOC, TFRecord): Darknet ignores EXIF, so the labels refer
  to the stored pixels, while detforge and most readers of those formats show the image
  rotated. detforge does not guess which the labels were drawn on: re-save the image upright
  (and check its labels) first;
* boxes outside the image (``coord-negative``, ``coord-above-one``) are an error; ``clip``
  clips every box to the image (dropping those left without area), ``skip_bad`` leaves the
  bad ones out; what was dropped is returned as notes.

Unknown sizes (``0``) are filled from the headers, so writers need not read them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from detforge.data.boxes import BoxFormat, cxcywh_to_xyxy, xyxy_to_cxcywh
from detforge.data.dataset import Dataset, per_image
from detforge.errors import DetforgeError

PIXEL_TARGETS = frozenset({"coco", "voc", "tfrecord"})
"""Targets that store pixel sizes (or embed images upright): they need every image's size."""

TRUST_SIZE = ("image", "annotation")
"""Values of ``convert --trust-size``."""


@dataclass
class Verified:
    """:func:`verify_images`' result: the dataset to write and what was changed in it."""

    ds: Dataset
    notes: list[str] = field(default_factory=list)


def origins(ds: Dataset) -> list[str]:
    """Per image, the annotation entry that describes it, for messages: ``x.record record 5``,
    ``Annotations/a.xml``, ``instances.json image id 7``, a Darknet label file, else the
    image path."""
    paths = [str(p) for p in ds.images.path]
    records = per_image(ds, "records")
    if records is not None:
        return [f"{f}: record {n}" for f, n in records]
    xmls = per_image(ds, "xml_paths")
    if xmls is not None:
        return [str(x) for x in xmls]
    jsons = per_image(ds, "json_paths")  # each image's own file in a folder of per-split JSONs
    if jsons is not None:
        ids = ds.images.id.tolist()
        return [f"{js}: image id {i} ({p})" for js, i, p in zip(jsons, ids, paths, strict=True)]
    labels = per_image(ds, "label_paths")
    if labels is not None:
        return [str(lab) or p for lab, p in zip(labels, paths, strict=True)]
    return paths


def _describe(ds: Dataset, j: int) -> str:
    """Box ``j`` as its source writes it."""
    b = ds.boxes.coords[j].tolist()
    name = ds.class_names[int(ds.boxes.cls[j])] if ds.boxes.cls[j] < ds.num_classes else "?"
    if ds.boxes.format is BoxFormat.XYXY_PIXEL:  # VOC: 1-based inclusive pixels
        return f"{name!r} box xmin={b[0] + 1:g} ymin={b[1] + 1:g} xmax={b[2]:g} ymax={b[3]:g}"
    if ds.boxes.format is BoxFormat.XYWH_PIXEL:
        return f"{name!r} box bbox=[{b[0]:g}, {b[1]:g}, {b[2]:g}, {b[3]:g}]"
    return f"{name!r} box cx={b[0]:g} cy={b[1]:g} w={b[2]:g} h={b[3]:g}"


def verify_images(
    ds: Dataset,
    *,
    fmt: str,
    to: str,
    place_images: bool,
    trust_size: str | None = None,
    clip: bool = False,
    skip_bad: bool = False,
) -> Verified:
    """Check ``ds`` (read from format ``fmt``, to be written as ``to``) against its images;
    see the module docstring. ``place_images``: images will be linked or copied (a missing
    image is then an error). Raises :class:`DetforgeError` (one line) on the first fault."""
    from detforge.check.images import inspect_images
    from detforge.data.validity import stated_size_matches

    if trust_size is not None and trust_size not in TRUST_SIZE:
        raise DetforgeError(f"--trust-size must be image or annotation (got {trust_size!r})")
    where = origins(ds)
    paths = [str(p) for p in ds.images.path]
    infos = inspect_images(paths)
    boxed = np.zeros(ds.num_images, dtype=bool)
    boxed[ds.boxes.image] = True
    width, height = ds.images.width.copy(), ds.images.height.copy()
    notes: list[str] = []
    fixed = 0
    labels_only = fmt in ("darknet", "ultralytics") and ds.boxes.format is BoxFormat.CXCYWH_NORM
    for i, info in enumerate(infos):
        if info.problem == "image-missing" and not place_images:
            continue
        if info.problem:
            if info.problem == "image-missing":
                raise DetforgeError(f"{where[i]}: image {paths[i]} not found; cannot link it")
            raise DetforgeError(
                f"{where[i]}: {paths[i]} is not a readable image ({info.problem}: "
                f"{info.detail}); detforge links or copies only images -- fix the path or the "
                "file (see detforge check)"
            )
        raw = (info.width, info.height)
        shown = raw[::-1] if info.orientation >= 5 else raw
        if labels_only and to in PIXEL_TARGETS and boxed[i] and info.orientation not in (0, 1):
            raise DetforgeError(
                f"{where[i]}: image {paths[i]} has EXIF orientation {info.orientation}: Darknet "
                "ignores EXIF, so its labels refer to the stored pixels, while "
                f"{to} readers show the image rotated; detforge does not guess -- re-save the "
                "image upright (and check its labels), then convert"
            )
        stated = (int(width[i]), int(height[i]))
        if stated[0] <= 0 or stated[1] <= 0:
            width[i], height[i] = shown
            continue
        if stated_size_matches(stated, raw, info.orientation):
            continue
        if trust_size == "annotation":
            continue
        if trust_size == "image":
            width[i], height[i] = shown
            fixed += 1
            continue
        raise DetforgeError(
            f"{where[i]}: the annotation says {stated[0]} x {stated[1]} px but the image "
            f"{paths[i]} is {shown[0]} x {shown[1]}; its boxes would be scaled wrong -- fix "
            "the stated size, or pass --trust-size image (use the real size, boxes kept as "
            "written) or --trust-size annotation"
        )
    if fixed:
        notes.append(f"used the real image size for {fixed} image(s) whose stated size differed")
    ds = replace(ds, images=replace(ds.images, width=width, height=height))
    return _borders(ds, where, clip=clip, skip_bad=skip_bad, notes=notes)


def _borders(
    ds: Dataset, where: Sequence[str], *, clip: bool, skip_bad: bool, notes: list[str]
) -> Verified:
    """Refuse, clip or leave out boxes outside their image (:func:`border_codes`)."""
    from detforge.data.validity import BORDER_CODES, border_codes

    if not ds.num_boxes:
        return Verified(ds, notes)
    img = ds.boxes.image
    known = (ds.images.width[img] > 0) & (ds.images.height[img] > 0)
    if ds.boxes.format is BoxFormat.CXCYWH_NORM:
        norm = ds.boxes.coords.copy()
        known[:] = True
    else:
        norm = np.zeros((ds.num_boxes, 4))
        sub = np.flatnonzero(known)
        norm[sub] = _convert(ds, sub, ds.boxes.coords[sub], ds.boxes.format, BoxFormat.CXCYWH_NORM)
    codes = border_codes(norm)
    codes[~known] = ""
    bad = np.flatnonzero(codes != "")
    if clip:
        xyxy = np.clip(cxcywh_to_xyxy(norm), 0.0, 1.0)
        keep = ~known | np.all(xyxy[:, 2:] - xyxy[:, :2] > 0, axis=1)
        changed = known & np.any(np.abs(cxcywh_to_xyxy(norm) - xyxy) > 1e-9, axis=1)
        dropped = np.flatnonzero(~keep)
        for j in dropped.tolist():
            notes.append(f"left out: {where[int(img[j])]}: {_describe(ds, j)}: outside the image")
        if int(changed.sum()) - len(dropped) > 0:
            notes.append(f"clipped {int(changed.sum()) - len(dropped)} box(es) to the image")
        coords = ds.boxes.coords.copy()  # only clipped boxes change: no round-trip noise
        sub = np.flatnonzero(changed)
        back = xyxy_to_cxcywh(xyxy[sub])
        coords[sub] = _convert(ds, sub, back, BoxFormat.CXCYWH_NORM, ds.boxes.format)
        boxes = replace(ds.boxes, coords=coords)
        return Verified(replace(ds, boxes=boxes.take(np.flatnonzero(keep))), notes)
    if not len(bad):
        return Verified(ds, notes)
    if not skip_bad:
        j = int(bad[0])
        code = str(codes[j])
        raise DetforgeError(
            f"{where[int(img[j])]}: {_describe(ds, j)}: {code}: {BORDER_CODES[code]} "
            f"({len(bad)} such box(es)); fix them (see detforge check), or pass --clip-boxes "
            "to clip them to the image or --skip-bad to convert without them"
        )
    for j in bad.tolist():
        notes.append(f"left out: {where[int(img[j])]}: {_describe(ds, j)}: {codes[j]}")
    keep = np.flatnonzero(codes == "")
    return Verified(replace(ds, boxes=ds.boxes.take(keep)), notes)


def _convert(
    ds: Dataset,
    rows: np.ndarray,  # type: ignore[type-arg]
    coords: np.ndarray,  # type: ignore[type-arg]
    src: BoxFormat,
    dst: BoxFormat,
) -> np.ndarray:  # type: ignore[type-arg]
    """``coords`` of boxes ``rows`` from ``src`` to ``dst`` by their images' sizes."""
    from detforge.data.boxes import convert_boxes

    img = ds.boxes.image[rows]
    return convert_boxes(
        coords, src, dst, widths=ds.images.width[img], heights=ds.images.height[img]
    )
