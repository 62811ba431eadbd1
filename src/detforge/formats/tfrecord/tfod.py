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
When a label map is given and a box's ``class/text`` is in it, the text decides the class (as
the API's decoder does) and disagreements with ``class/label`` are reported in
``ds.meta["warnings"]``. The split of a file comes from its name: ``train.record``,
``val.record-00000-of-00002`` ... (``all.record`` means no split).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detforge.data.boxes import BoxFormat, cxcywh_to_xyxy, xyxy_to_cxcywh
from detforge.data.dataset import Dataset, canonical_split, make_dataset
from detforge.errors import DetforgeError
from detforge.formats.common import ensure_sizes, split_file_name
from detforge.formats.labelmap import check_label_map, label_map_names, write_label_map
from detforge.formats.tfrecord.example import (
    Feature,
    bytes_feature,
    bytes_values,
    decode_example,
    encode_example,
    float_feature,
    float_values,
    int64_feature,
    int64_values,
)
from detforge.formats.tfrecord.framing import expand_record_paths, read_records, write_sharded
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

    ``all.record`` (what detforge writes for images without a split) -> ``""``.
    """
    stem = name
    for marker in (".tfrecord", ".record"):
        if marker in stem:
            stem = stem.split(marker)[0]
            break
    split = canonical_split(stem)
    return "" if split == "all" else split


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


def _text(example: dict[str, Feature], key: str) -> str:
    vals = bytes_values(example, key)
    return vals[0].decode("utf-8", "replace") if vals else ""


def _scalar(example: dict[str, Feature], key: str) -> int:
    vals = int64_values(example, key)
    return vals[0] if vals else 0


def read_tfod(
    source: str | os.PathLike[str],
    *,
    label_map: dict[int, str] | None = None,
    extract_images_to: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Read TF OD API records (a file, a shard, or a folder of them) into a :class:`Dataset`.

    ``label_map`` (``{id: name}``, see :mod:`detforge.formats.labelmap`) fixes the class names
    and order; without it names come from the records' ``(label, text)`` pairs. With
    ``extract_images_to`` the embedded images are written there (``<split>/<file name>``) and
    become the dataset's image paths; otherwise paths are the records' ``image/filename``.
    Boxes come out in ``CXCYWH_NORM``. Corrupt or truncated records raise
    :class:`DetforgeError` naming the file, record index and byte offset.
    """
    files = expand_record_paths(source)
    names_by_id: dict[int, str] = dict(label_map or {})
    id_by_name = {v: k for k, v in names_by_id.items()}
    paths: list[str] = []
    widths: list[int] = []
    heights: list[int] = []
    splits: list[str] = []
    ids: list[int] = []
    box_image: list[int] = []
    box_label: list[int] = []
    coords: list[np.ndarray[Any, Any]] = []
    diff: list[int] = []
    trunc: list[int] = []
    warnings: list[str] = []
    taken: set[str] = set()
    out_root = Path(extract_images_to) if extract_images_to is not None else None
    for file in files:
        split = split_from_record_name(file.name)
        records = progress(read_records(file), desc=f"reading {file.name}", unit="rec")
        for rec_index, data in enumerate(records):
            try:
                ex = decode_example(data)
                n_img = len(paths)
                filename = _text(ex, "image/filename") or f"record{n_img}.jpg"
                box = [
                    np.asarray(float_values(ex, f"image/object/bbox/{k}"), np.float64)
                    for k in ("xmin", "ymin", "xmax", "ymax")
                ]
                labels = int64_values(ex, "image/object/class/label")
                texts = [
                    v.decode("utf-8", "replace")
                    for v in bytes_values(ex, "image/object/class/text")
                ]
            except DetforgeError as exc:
                raise DetforgeError(f"record {rec_index}: {exc.message}", path=file) from None
            k = len(box[0])
            if any(len(b) != k for b in box) or (labels and len(labels) != k):
                raise DetforgeError(
                    f"record {rec_index} ({filename}): bbox and class lists differ in length",
                    path=file,
                )
            if not labels and texts:
                labels = [id_by_name.get(t, 0) for t in texts]
            if len(labels) != k:
                raise DetforgeError(
                    f"record {rec_index} ({filename}): {k} boxes but no class labels", path=file
                )
            for j, lab in enumerate(labels):
                text = texts[j] if j < len(texts) else ""
                if label_map is not None and text in id_by_name:
                    if id_by_name[text] != lab:
                        warnings.append(
                            f"{file.name} record {rec_index}: class/text {text!r} is id "
                            f"{id_by_name[text]} in the label map but class/label is {lab}"
                        )
                    lab = id_by_name[text]
                if lab < 1:
                    raise DetforgeError(
                        f"record {rec_index} ({filename}): class label {lab} is not 1-based "
                        "(0 is the background in the TF OD API)",
                        path=file,
                    )
                if label_map is None and lab not in names_by_id and text:
                    names_by_id[lab] = text
                box_label.append(lab)
            coords.append(np.stack(box, axis=1) if k else np.zeros((0, 4)))
            box_image.extend([n_img] * k)
            d = int64_values(ex, "image/object/difficult")[:k]
            t = int64_values(ex, "image/object/truncated")[:k]
            diff.extend(d + [0] * (k - len(d)))
            trunc.extend(t + [0] * (k - len(t)))
            source_id = _text(ex, "image/source_id")
            ids.append(int(source_id) if source_id.strip().isdigit() else n_img)
            widths.append(_scalar(ex, "image/width"))
            heights.append(_scalar(ex, "image/height"))
            splits.append(split)
            if out_root is not None:
                paths.append(_extract(ex, out_root / (split or "all"), filename, taken, file))
            else:
                paths.append(filename)
    if label_map is not None:
        names = label_map_names(names_by_id)
        bad = sorted({lab for lab in box_label if lab > len(names)})
        if bad:
            raise DetforgeError(
                f"records use class ids {bad[:10]} that the label map does not have",
                path=str(source),
            )
    else:
        top = max([*names_by_id, *box_label], default=0)
        names = [names_by_id.get(i, f"class{i}") for i in range(1, top + 1)]
    xyxy = np.concatenate(coords, axis=0) if coords else np.zeros((0, 4))
    return make_dataset(
        names,
        paths=paths,
        widths=widths,
        heights=heights,
        splits=splits,
        image_ids=ids,
        box_image=box_image,
        box_cls=np.asarray(box_label, dtype=np.int64) - 1,
        box_coords=xyxy_to_cxcywh(xyxy),
        box_format=BoxFormat.CXCYWH_NORM,
        difficult=np.asarray(diff, dtype=bool),
        truncated=np.asarray(trunc, dtype=bool),
        meta={"source": str(source), "format": "tfrecord", "warnings": warnings},
    )


def _extract(
    ex: dict[str, Feature], folder: Path, filename: str, taken: set[str], file: Path
) -> str:
    from detforge.utils.io import atomic_write_bytes

    enc = bytes_values(ex, "image/encoded")
    if not enc:
        raise DetforgeError(f"record for {filename} has no image/encoded bytes", path=file)
    name = Path(filename.replace("\\", "/")).name or "image.jpg"
    stem, suffix = os.path.splitext(name)
    k = 1
    while str(folder / name).lower() in taken:
        name = f"{stem}_{k}{suffix}"
        k += 1
    taken.add(str(folder / name).lower())
    atomic_write_bytes(folder / name, enc[0])
    return str(folder / name)


def _upright(encoded: bytes, fmt: str) -> tuple[bytes, str]:
    """Re-encode an EXIF-rotated image upright: TF decodes pixels without EXIF, while detforge
    sizes and boxes refer to the displayed (rotated) image."""
    import io

    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(encoded)) as im:
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
