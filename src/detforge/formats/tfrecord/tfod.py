"""TF Object Detection API records: ``tf.train.Example`` per image, read and written.

The feature keys are exactly those the API's ``TfExampleDecoder`` reads for boxes::

    image/encoded            bytes   the image file's bytes (JPEG or PNG)
    image/format             bytes   b"jpeg" / b"png"
    image/height, image/width int64  pixels
    image/filename           bytes   file name
    image/source_id          bytes   image id (decimal string)
    image/key/sha256         bytes   hex SHA-256 of image/encoded
    image/object/bbox/xmin, xmax, ymin, ymax   float   normalized to [0, 1] by width/height
    image/object/class/text  bytes   class name
    image/object/class/label int64   class id, 1-based (detforge class k -> k + 1)
    image/object/difficult, image/object/truncated   int64   0/1

Reading turns the normalized corners straight into ``CXCYWH_NORM`` (no pixel round trip).
A box's ``class/label`` and ``class/text`` must agree with the label map (or, without one,
with the other records): a disagreement, an id the label map lacks (:func:`class_problems`,
the one rule reading and ``detforge check`` apply) and a record without ``class/label`` are
errors naming the record, as ``detforge check`` reports them. The split
of a file comes from its name: ``train.record``, ``val.record-00000-of-00002`` ...
(``all.record``, or a name that is no split such as ``raccoon.record``, means no split).

Reading is :func:`detforge.formats.tfrecord.tfod_read.read_tfod`; this module writes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detforge.data.boxes import BoxFormat, cxcywh_to_xyxy, xyxy_to_cxcywh
from detforge.data.dataset import SPLITS, Dataset, canonical_split
from detforge.errors import DetforgeError, clip
from detforge.formats.common import ensure_sizes, split_file_name
from detforge.formats.labelmap import check_label_map, write_label_map
from detforge.formats.tfrecord.example import (
    Feature,
    bytes_feature,
    encode_example,
    float_feature,
    int64_feature,
)
from detforge.formats.tfrecord.framing import write_sharded
from detforge.utils.progress import progress

TFOD_KEYS: tuple[str, ...] = (
    "image/encoded",
    "image/format",
    "image/height",
    "image/width",
    "image/filename",
    "image/source_id",
    "image/key/sha256",
    "image/object/bbox/xmin",
    "image/object/bbox/xmax",
    "image/object/bbox/ymin",
    "image/object/bbox/ymax",
    "image/object/class/text",
    "image/object/class/label",
    "image/object/difficult",
    "image/object/truncated",
)
"""Every key detforge writes; the set the TF OD API decoder needs for detection."""


def split_from_record_name(name: str) -> str:
    """``train.record`` -> ``train``; ``val.tfrecord-00001-of-00004`` -> ``valid``.

    ``all.record`` (what detforge writes for images without a split) -> ``""``, and so does
    any name that is not a split (``raccoon.record``): its images have no split, which the
    writers treat as training data (Darknet ``train=``, ``all`` elsewhere).
    """
    stem = name
    for marker in (".tfrecord", ".record"):
        if marker in stem:
            stem = stem.split(marker)[0]
            break
    split = canonical_split(stem)
    return split if split in SPLITS else ""


def class_problems(
    labels: Sequence[int], texts: Sequence[str], names: Mapping[int, str], *, label_map: bool
) -> tuple[list[tuple[int, str]], dict[int, str]]:
    """What is wrong with one record's ``class/label`` ids (1-based) and ``class/text`` names
    (empty when the record has none), and the names it teaches.

    ``names`` maps ids to names: the label map's (``label_map=True``), or those the records
    read so far taught. A box is wrong when its id is below 1 (0 is the TF OD API's
    background), not in the label map, or named otherwise by its text than by ``names`` (or
    by an earlier box of this record) -- the mismatch behind the guide's NaN loss. Returns
    ``([(box index (0-based), message without the record's name), ...], {id: text})``, the
    second the ids ``names`` lacks with their first text (always empty with a label map):
    the reader refuses the record at its first problem, ``detforge check`` reports each.
    """
    problems: list[tuple[int, str]] = []
    learned: dict[int, str] = {}
    for j, lab in enumerate(labels):
        text = texts[j] if j < len(texts) else ""
        known = names.get(lab, learned.get(lab))
        if lab < 1:
            problem = f"class/label {lab} is not 1-based (0 is the background in the TF OD API)"
        elif label_map and known is None:
            shown = f" (class/text {clip(text)!r})" if text else ""
            problem = f"class/label {lab}{shown} is not in the label map"
        elif text and known is not None and known != text:
            said = "the label map" if label_map else "earlier boxes"
            problem = (
                f"class/label {lab} is {clip(known)!r} in {said} but class/text says "
                f"{clip(text)!r} -- the guide's NaN-loss mismatch; fix the record or the label map"
            )
        else:
            if known is None and text:
                learned[lab] = text
            continue
        problems.append((j, problem))
    return problems, learned


def example_from_image(
    *,
    encoded: bytes,
    image_format: str,
    width: int,
    height: int,
    filename: str,
    source_id: str,
    xyxy_norm: np.ndarray[Any, Any],
    labels: Sequence[int],
    texts: Sequence[str],
    difficult: Sequence[bool],
    truncated: Sequence[bool],
) -> dict[str, Feature]:
    """The TF OD feature map of one image; ``xyxy_norm`` is ``(K, 4)`` corners in ``[0, 1]``."""
    b = np.asarray(xyxy_norm, dtype=np.float64).reshape(-1, 4)
    return {
        "image/encoded": bytes_feature([encoded]),
        "image/format": bytes_feature([image_format]),
        "image/height": int64_feature([height]),
        "image/width": int64_feature([width]),
        "image/filename": bytes_feature([filename]),
        "image/source_id": bytes_feature([source_id]),
        "image/key/sha256": bytes_feature([hashlib.sha256(encoded).hexdigest()]),
        "image/object/bbox/xmin": float_feature(b[:, 0].tolist()),
        "image/object/bbox/xmax": float_feature(b[:, 2].tolist()),
        "image/object/bbox/ymin": float_feature(b[:, 1].tolist()),
        "image/object/bbox/ymax": float_feature(b[:, 3].tolist()),
        "image/object/class/text": bytes_feature(texts),
        "image/object/class/label": int64_feature(labels),
        "image/object/difficult": int64_feature([int(d) for d in difficult]),
        "image/object/truncated": int64_feature([int(t) for t in truncated]),
    }


def _upright(encoded: bytes, fmt: str) -> tuple[bytes, str]:
    """Re-encode an EXIF-rotated image upright: TF decodes pixels without EXIF, while detforge
    sizes and boxes refer to the displayed (rotated) image."""
    import io

    from PIL import ImageOps

    from detforge.data.images import open_image

    with open_image(io.BytesIO(encoded)) as im:
        upright = ImageOps.exif_transpose(im).convert("RGB")
    buf = io.BytesIO()
    if fmt == "png":
        upright.save(buf, format="PNG")
        return buf.getvalue(), "png"
    upright.save(buf, format="JPEG", quality=95)
    return buf.getvalue(), "jpeg"


def _examples(ds: Dataset, order: np.ndarray[Any, Any]) -> Iterator[bytes]:
    """Serialized examples for images ``order`` of ``ds`` (boxes in ``CXCYWH_NORM``)."""
    from detforge.data.imagesize import read_image_header

    starts = np.searchsorted(ds.boxes.image, np.arange(ds.num_images + 1))
    names = ds.class_names
    for i in order.tolist():
        path = str(ds.images.path[i])
        try:
            encoded = Path(path).read_bytes()
        except OSError:
            raise DetforgeError(
                "image not found: TFRecords embed the image bytes", path=path
            ) from None
        header = read_image_header(path)
        fmt = header.format
        if header.orientation != 1:
            encoded, fmt = _upright(encoded, fmt)
        sl = slice(int(starts[i]), int(starts[i + 1]))
        xyxy = cxcywh_to_xyxy(ds.boxes.coords[sl])
        cls = ds.boxes.cls[sl]
        yield encode_example(
            example_from_image(
                encoded=encoded,
                image_format=fmt,
                width=int(ds.images.width[i]),
                height=int(ds.images.height[i]),
                filename=Path(path).name,
                source_id=str(int(ds.images.id[i])),
                xyxy_norm=xyxy,
                labels=(cls + 1).tolist(),
                texts=[names[c] for c in cls.tolist()],
                difficult=ds.boxes.difficult[sl].tolist(),
                truncated=ds.boxes.truncated[sl].tolist(),
            )
        )


def tfod_box_problems(ds: Dataset) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Boolean ``(M,)`` masks: boxes reaching outside ``[0, 1]`` (beyond 1e-6), zero-area boxes."""
    xyxy = cxcywh_to_xyxy(ds.with_format(BoxFormat.CXCYWH_NORM).boxes.coords)
    outside = np.any((xyxy < -1e-6) | (xyxy > 1 + 1e-6), axis=1)
    clipped = np.clip(xyxy, 0.0, 1.0)
    empty = np.any(clipped[:, 2:] - clipped[:, :2] <= 0, axis=1)
    return outside & ~empty, empty


def clip_boxes(ds: Dataset) -> Dataset:
    """``ds`` (``CXCYWH_NORM``) with boxes clipped to the image and zero-area boxes removed."""
    from dataclasses import replace

    ds = ds.with_format(BoxFormat.CXCYWH_NORM)
    xyxy = np.clip(cxcywh_to_xyxy(ds.boxes.coords), 0.0, 1.0)
    keep = np.flatnonzero(np.all(xyxy[:, 2:] - xyxy[:, :2] > 0, axis=1))
    boxes = replace(ds.boxes, coords=xyxy_to_cxcywh(xyxy)).take(keep)
    return replace(ds, boxes=boxes)


def write_tfod(
    ds: Dataset,
    out_dir: str | os.PathLike[str],
    *,
    shards: int = 1,
    label_map: str | os.PathLike[str] | None = None,
    clip: bool = False,
) -> tuple[dict[str, list[Path]], Path]:
    """Write one ``<split>.record`` per split (``val`` for ``valid``) and ``label_map.pbtxt``.

    ``shards > 1`` writes ``<split>.record-0000i-of-0000N`` files. A given ``label_map`` must
    match the class names exactly (else :class:`DetforgeError`); the written label map is
    always generated from the names. Crowd boxes are written as ordinary boxes: callers drop
    them first (``convert`` does, and says how many). Returns ``({split: paths}, label_map)``.

    Boxes TensorFlow trains to NaN on -- corners outside ``[0, 1]`` or zero area -- are a
    :class:`DetforgeError` naming the first image; with ``clip=True`` they are clipped to the
    image and boxes left with zero area are dropped (counted in ``ds.meta["tfod_clipped"]``
    of nothing: see :func:`tfod_box_problems` to count them beforehand).
    """
    out = Path(out_dir)
    if label_map is not None:
        check_label_map(label_map, ds.class_names)
    if ds.num_boxes and ds.boxes.cls.max() >= ds.num_classes:
        raise DetforgeError(
            f"class id {int(ds.boxes.cls.max())} has no name ({ds.num_classes} classes)"
        )
    ds = ensure_sizes(ds).with_format(BoxFormat.CXCYWH_NORM)
    outside, empty = tfod_box_problems(ds)
    if (outside.any() or empty.any()) and not clip:
        first = int(ds.boxes.image[np.flatnonzero(outside | empty)[0]])
        raise DetforgeError(
            f"{int(outside.sum())} boxes extend outside the image and {int(empty.sum())} have "
            f"zero area (first in {ds.images.path[first]}); TensorFlow trains to NaN on them. "
            "Fix the labels (detforge check), or pass --clip-boxes to clip them to the image "
            "and drop empty ones"
        )
    if clip:
        ds = clip_boxes(ds)
    written: dict[str, list[Path]] = {}
    for split in ds.splits():
        order = np.flatnonzero(ds.images.split == split)
        name = f"{split_file_name(split)}.record"
        records = progress(
            _examples(ds, order), total=len(order), desc=f"writing {name}", unit="img"
        )
        written[split] = write_sharded(out / name, records, shards=shards)
    lm = write_label_map(out / "label_map.pbtxt", ds.class_names)
    return written, lm
