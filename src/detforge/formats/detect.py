"""Which format a path holds, and one entry point to read or write any of them.

:func:`detect_format` looks at a path (never at file contents beyond names and folders):

============================================  ===============
``x.data`` / a ``.txt`` image list              ``darknet``
``x.yaml`` / ``x.yml``                          ``ultralytics``
``x.json``; a folder of ``instances_*.json``    ``coco``
a folder with ``Annotations/``                  ``voc``
``x.record`` / ``x.tfrecord`` (shards too),     ``tfrecord``
a folder of them
another folder (images with labels beside)      ``darknet``
============================================  ===============

:func:`read_any` reads it into a :class:`Dataset`; :func:`read_ground_truth` reads the one
split that evaluation scores (for a ``.data`` file only that split's list); :func:`write_any`
writes one in a target format, dropping (and counting) crowd boxes for formats that cannot
hold them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from detforge.data.dataset import SPLITS, Dataset, canonical_split, concat_datasets
from detforge.errors import DetforgeError
from detforge.formats.common import drop_crowd, settle_repeated_entries
from detforge.utils.io import ImageMode

FormatName = Literal["darknet", "ultralytics", "coco", "voc", "tfrecord"]
FORMATS: tuple[str, ...] = ("darknet", "ultralytics", "coco", "voc", "tfrecord")
_CROWDLESS = frozenset({"darknet", "ultralytics", "voc", "tfrecord"})
_FLAGLESS = frozenset({"darknet", "ultralytics", "coco"})
"""Targets without VOC's difficult / truncated flags: difficult boxes are written as
ordinary ones, truncated flags are lost (a note counts both)."""


def _is_record_name(name: str) -> bool:
    return ".record" in name or ".tfrecord" in name


def _coco_jsons(folder: Path) -> list[Path]:
    for d in (folder / "annotations", folder):
        found = sorted(d.glob("instances_*.json")) if d.is_dir() else []
        if found:
            return found
    return []


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format name of ``path`` (see the module table); :class:`DetforgeError` if unknown."""
    from detforge.utils.outdir import refuse_incomplete

    p = Path(path)
    if not p.exists():
        raise DetforgeError("dataset source not found", path=p)
    if not p.is_file() and not p.is_dir():  # a FIFO or a device: never opened (it could hang)
        raise DetforgeError(
            "dataset source is not a regular file or folder (a pipe or a device?)", path=p
        )
    refuse_incomplete(p)
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".data" or suffix == ".txt":
            return "darknet"
        if suffix in (".yaml", ".yml"):
            return "ultralytics"
        if suffix == ".json":
            return "coco"
        if _is_record_name(p.name):
            return "tfrecord"
        raise DetforgeError(
            "cannot tell the format of this file: expected .data, .txt (image list), .yaml, "
            ".json, .record or .tfrecord",
            path=p,
        )
    if (p / "Annotations").is_dir():
        return "voc"
    if any(
        q.is_file() and _is_record_name(q.name) and not q.name.startswith(".") for q in p.iterdir()
    ):
        return "tfrecord"
    if _coco_jsons(p):
        return "coco"
    yamls = sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml"))
    if (p / "images").is_dir() and (p / "labels").is_dir() and yamls:
        return "ultralytics"
    return "darknet"


def load_class_list(path: str | os.PathLike[str]) -> list[str]:
    """Class names in id order from a TF label map or a one-name-a-line class list, whatever
    the file's suffix (:func:`~detforge.formats.labelmap.read_label_map`); a name given twice
    or a line of another format is a :class:`DetforgeError` naming the file and line."""
    from detforge.formats.labelmap import label_map_names, read_label_map

    return label_map_names(read_label_map(path), path=os.fspath(path))


def read_any(
    source: str | os.PathLike[str],
    *,
    format: str | None = None,
    label_map: str | os.PathLike[str] | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    extract_images_to: str | os.PathLike[str] | None = None,
    path_map: Sequence[tuple[str, str]] = (),
) -> Dataset:
    """Read a dataset in any supported format (detected unless ``format`` is given).

    ``label_map``: for TFRecords the ``.pbtxt`` (else one found beside the records); for VOC a
    class list fixing the class order. ``images_dir``: where COCO file names are relative to.
    ``extract_images_to``: where images embedded in TFRecords are written (else not extracted).
    ``path_map``: Darknet ``OLD=NEW`` path prefix rewrites.
    """
    from detforge.utils.outdir import refuse_incomplete

    src = Path(source)
    fmt = format or detect_format(src)
    refuse_incomplete(src)
    if fmt == "darknet":
        from detforge.formats.darknet import read_darknet

        return read_darknet(src, path_map=path_map)
    if fmt == "ultralytics":
        from detforge.formats.ultralytics import read_ultralytics

        if src.is_dir():
            yamls = sorted(src.glob("*.yaml")) + sorted(src.glob("*.yml"))
            if len(yamls) != 1:
                raise DetforgeError("give the dataset YAML file itself", path=src)
            src = yamls[0]
        return read_ultralytics(src)
    if fmt == "voc":
        from detforge.formats.voc import read_voc

        names = load_class_list(label_map) if label_map is not None else None
        return read_voc(src, class_names=names)
    if fmt == "tfrecord":
        from detforge.formats.labelmap import find_label_map, read_label_map
        from detforge.formats.tfrecord.tfod_read import read_tfod

        folder = src if src.is_dir() else src.parent
        lm = label_map if label_map is not None else find_label_map(folder)
        mapping = read_label_map(lm) if lm is not None else None
        return read_tfod(src, label_map=mapping, extract_images_to=extract_images_to)
    if fmt == "coco":
        return _read_coco_any(src, images_dir)
    raise DetforgeError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def read_ground_truth(
    source: str | os.PathLike[str],
    *,
    split: str | None = None,
    format: str | None = None,
    images_dir: str | os.PathLike[str] | None = None,
    path_map: Sequence[tuple[str, str]] = (),
    default_split: str | None = None,
) -> tuple[Dataset, Path | None]:
    """The ground truth ``eval``/``map``/``show``/``predict --save-json`` score against: one
    split of ``source``, and for a ``.data`` file its ``results=`` folder (else ``None``).
    Without ``split``, ``default_split`` (the split predictions were made on) is used when the
    dataset has it, else ``valid``.

    A ``.data`` file: only the list of ``split`` (default ``valid``) is read, with the
    ``.data`` file's names. Anything else is read whole (:func:`read_any`); then ``split`` is
    selected (an error when absent), or with no ``split`` the ``valid`` split when there are
    several (else the first). Boxes the readers leave out (:mod:`detforge.data.validity`,
    e.g. zero size) are not scored; they are listed in ``ds.meta["invalid_boxes"]``.
    """
    src = Path(source)
    if src.suffix.lower() == ".data" and src.is_file() and format in (None, "darknet"):
        from detforge.formats.darknet import read_darknet

        ds = read_darknet(src, path_map=path_map, split=split or default_split or "valid")
        results = ds.meta["data_file"].results
        return ds, Path(results) if results else None
    ds = read_any(src, format=format, images_dir=images_dir, path_map=path_map)
    splits = ds.splits()
    if split is not None:
        want = canonical_split(split)
        if want not in splits:
            have = ", ".join(s or "(none)" for s in splits)
            raise DetforgeError(f"the dataset has no split {split!r} (it has: {have})", path=src)
        return ds.split(want), None
    if len(splits) > 1:
        pick = default_split if default_split in splits else "valid"
        ds = ds.split(pick if pick in splits else splits[0])
    return ds, None


def _read_coco_any(src: Path, images_dir: str | os.PathLike[str] | None) -> Dataset:
    """A COCO JSON, or a folder of per-split ``instances_<split>.json`` files read into one
    dataset whose ``meta["source"]`` is the folder (``meta["json_paths"]``: each image's
    file)."""
    from detforge.formats.coco import read_coco

    if src.is_file():
        return read_coco(src, images_dir=images_dir)
    parts = []
    for js in _coco_jsons(src):
        sub = js.stem.removeprefix("instances_")
        split = "" if sub == "all" else canonical_split(sub)
        parts.append(
            read_coco(js, images_dir=images_dir, split=split if split in ("", *SPLITS) else None)
        )
    if len(parts) == 1:
        return parts[0]
    names = parts[0].class_names
    if any(p.class_names != names for p in parts):
        raise DetforgeError("the per-split COCO files have different categories", path=src)
    merged = concat_datasets(parts)  # each image's JSON file: meta["json_paths"]
    return replace(merged, meta={**merged.meta, "source": str(src)})


def source_file_folders(ds: Dataset) -> list[str]:
    """The folders of ``ds``'s images and Darknet label files (what an output folder may not
    be or contain)."""
    folders = {os.path.dirname(os.path.abspath(str(p))) for p in ds.images.path if str(p)}
    label_paths = ds.meta.get("label_paths")
    if label_paths is not None:
        folders.update(os.path.dirname(os.path.abspath(str(p))) for p in label_paths if p)
    return sorted(folders)


def _refuse_undecodable_names(ds: Dataset, to: str) -> None:
    """COCO JSON, VOC XML and TFRecords hold file names as UTF-8 text: a name that is not
    UTF-8 (read from disk as the operating system gives it) cannot go there."""
    for p in ds.images.path.tolist():
        try:
            str(p).encode("utf-8")
        except UnicodeEncodeError:
            raise DetforgeError(
                f"this image's file name is not UTF-8; {to} stores names as UTF-8 text -- "
                "rename the file (or convert to darknet, whose lists keep the bytes)",
                path=str(p).encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
            ) from None


@dataclass
class WriteResult:
    """What :func:`write_any` wrote: the main file/folder, and what it had to leave out."""

    path: Path
    dropped_crowd: int = 0
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _voc_extras_note(extras: list[dict[str, Any]]) -> str:
    """The note on VOC ``<pose>``, ``<occluded>`` and ``<part>`` entries a conversion leaves
    out (``meta["voc_extras"]`` of :func:`~detforge.formats.voc.read_voc`)."""
    labels = {"pose": "pose value(s)", "occluded": "occluded flag(s)", "parts": "part box(es)"}
    what = [
        f"{n} {label}"
        for key, label in labels.items()
        if (n := sum(int(e.get(key, 0)) for e in extras))
    ]
    return (
        f"left out {', '.join(what)} of the VOC annotations (first: {extras[0]['path']}): "
        "detforge converts boxes with their difficult and truncated flags only"
    )


def _category_ids_note(ds: Dataset, to: str) -> str | None:
    """The note on category ids other than ``1..K`` (COCO's, from ``ds.source_classes``) that
    ``to`` cannot keep, else ``None``."""
    from detforge.formats.coco import coco_category_ids

    ids, k = coco_category_ids(ds), ds.num_classes
    if ids == list(range(1, k + 1)):
        return None
    shown = ", ".join(map(str, ids[:8])) + (", ..." if k > 8 else "")
    numbered = {"voc": "by name", "tfrecord": f"1..{k} in the label map"}.get(to, f"0..{k - 1}")
    return (
        f"the source's category ids ({shown}) are not kept: {to} numbers the {k} class(es) "
        f"{numbered}, so converting back to COCO gives ids 1..{k}"
    )


def write_any(
    ds: Dataset,
    out: str | os.PathLike[str],
    *,
    to: str,
    images: ImageMode = "link",
    label_map: str | os.PathLike[str] | None = None,
    shards: int = 1,
    clip_boxes: bool = False,
) -> WriteResult:
    """Write ``ds`` into folder ``out`` as format ``to``.

    ``images``: ``link`` (default), ``copy`` or ``none`` (TFRecords always embed the image
    bytes). ``label_map`` / ``shards`` / ``clip_boxes``: TFRecord only (a given label map must
    match the names; boxes outside the image or without area are an error unless clipped).
    Crowd boxes are dropped for formats without a crowd flag and counted in the result.
    Images listed twice in a split (``ds.meta["repeated_entries"]``) are written once for
    COCO, VOC and TFRecord and kept for Darknet and Ultralytics, with a note
    (:func:`~detforge.formats.common.settle_repeated_entries`). COCO segmentation masks and
    keypoints (``ds.meta["coco_shapes"]``) and VOC poses, occluded flags and parts
    (``ds.meta["voc_extras"]``) are never written, for any target, nor difficult / truncated
    flags for Darknet, Ultralytics and COCO: a note counts them.
    """
    if to not in FORMATS:
        raise DetforgeError(f"unknown target format {to!r}; choose one of {', '.join(FORMATS)}")
    from detforge.data.validity import assert_writable

    assert_writable(ds)
    if to in ("coco", "voc", "tfrecord"):
        _refuse_undecodable_names(ds, to)
    notes: list[str] = []
    ds, repeated = settle_repeated_entries(ds, to)
    if repeated:
        notes.append(repeated)
    shapes = ds.meta.get("coco_shapes") or []
    if shapes:
        masks, points = (sum(int(e[k]) for e in shapes) for k in ("masks", "keypoints"))
        notes.append(
            f"left out {masks} segmentation mask(s) and {points} keypoint set(s) of the COCO "
            f"annotations (first: {shapes[0]['path']}, annotation id {shapes[0]['first']}): "
            "detforge converts boxes only"
        )
    extras = ds.meta.get("voc_extras") or []
    if extras:
        notes.append(_voc_extras_note(extras))
    if to != "coco" and ds.source_classes is not None:
        ids_note = _category_ids_note(ds, to)
        if ids_note:
            notes.append(ids_note)
    dropped = 0
    if to in _CROWDLESS:
        ds, dropped = drop_crowd(ds)
        if dropped:
            notes.append(f"dropped {dropped} crowd boxes: {to} cannot mark boxes as crowd")
    n_diff, n_trunc = int(ds.boxes.difficult.sum()), int(ds.boxes.truncated.sum())
    if to in _FLAGLESS and (n_diff or n_trunc):
        notes.append(
            f"wrote {n_diff} difficult box(es) as ordinary boxes and left out {n_trunc} "
            f"truncated flag(s): {to} cannot mark them"
        )
    out_dir = Path(out)
    if to == "darknet":
        from detforge.formats.darknet import write_darknet

        return WriteResult(write_darknet(ds, out_dir, images=images), dropped, notes=notes)
    if to == "ultralytics":
        from detforge.formats.ultralytics import write_ultralytics

        return WriteResult(write_ultralytics(ds, out_dir, images=images), dropped, notes=notes)
    if to == "voc":
        from detforge.formats.voc import write_voc

        return WriteResult(write_voc(ds, out_dir, images=images), dropped, notes=notes)
    if to == "tfrecord":
        from detforge.formats.tfrecord.tfod import tfod_box_problems, write_tfod

        if images != "link":
            notes.append("TFRecords embed the image bytes; --images is ignored")
        if clip_boxes:
            outside, empty = tfod_box_problems(ds)
            if outside.any() or empty.any():
                notes.append(
                    f"clipped {int(outside.sum())} boxes to the image and dropped "
                    f"{int(empty.sum())} with zero area"
                )
        spaced = [n for n in ds.class_names if " " in n]
        if spaced:
            notes.append(f"class names with spaces can upset TF tools: {spaced[:5]}")
        written, lm = write_tfod(ds, out_dir, shards=shards, label_map=label_map, clip=clip_boxes)
        files = [p for ps in written.values() for p in ps]
        return WriteResult(lm, dropped, files=[*files, lm], notes=notes)
    from detforge.formats.coco import write_coco

    jsons = write_coco(ds, out_dir, images=images)
    return WriteResult(out_dir, files=list(jsons.values()), notes=notes)
