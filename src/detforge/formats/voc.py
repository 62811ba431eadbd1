"""Pascal VOC: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``.

Pixel convention
----------------
VOC XML counts pixels from 1 and its boxes are *inclusive*: ``xmin=1, xmax=W`` covers the whole
image width ``W``. detforge pixel coordinates are continuous (``[0, W]``), so pixel ``i`` (1-based)
is the interval ``[i - 1, i]`` and

    reading:  x1 = xmin - 1,  y1 = ymin - 1,  x2 = xmax,  y2 = ymax
    writing:  xmin = x1 + 1,  ymin = y1 + 1,  xmax = x2,  ymax = y2

which are exact inverses (integer boxes stay integers; non-integer values are written with 10
significant digits). This is the VOC devkit's convention (box width ``xmax - xmin + 1``). It
differs from Darknet's ``voc_label.py``, which shifts the centre by one pixel as well.

Kept per box: ``difficult`` and ``truncated``. A ``<pose>`` other than ``Unspecified``, an
``<occluded>`` flag and ``<part>`` boxes (VOC's person layout) are not kept: their counts are
in ``meta["voc_extras"]`` (``[{"path", "pose", "occluded", "parts"}]``, ``path`` the first XML
holding one), and ``convert`` says what it left out. XML is parsed with ``defusedxml``, so
entity-expansion and external-entity files are refused.

Images: ``JPEGImages/<id>.<suffix>``, the image named like the XML file, as the VOC devkit
reads them; ``<filename>`` only when no such image exists (a differing ``<filename>`` is
noted in ``meta["warnings"]``). Two annotations resolving to one image are an error naming
both XML files. ``meta["xml_paths"]`` holds each image's XML file.

Splits: ``ImageSets/Main/{train,val,test}.txt`` (``val`` -> ``valid``); ``trainval.txt`` is used
only for images in no other list (as ``train`` when there is no ``train.txt``). Class order:
``labels.txt`` in the dataset root (one name a line, written by :func:`write_voc`) when present,
else the given ``class_names``, else the names sorted alphabetically.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from xml.etree.ElementTree import Element

import numpy as np

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, canonical_split, make_dataset
from detforge.data.imageformats import IMAGE_EXTENSIONS_ANY_CASE
from detforge.data.validity import InvalidBox, box_codes, parse_size, screen_boxes, size_ok
from detforge.errors import DetforgeError
from detforge.formats.common import (
    ensure_sizes,
    split_file_name,
    staged_dir,
    unique_file_names,
)
from detforge.formats.darknet.files import read_class_list
from detforge.utils.io import ImageMode, atomic_write_text, place_file
from detforge.utils.progress import progress
from detforge.utils.textfile import read_text_lines


def _text(el: Element | None, tag: str, default: str = "") -> str:
    if el is None:
        return default
    child = el.find(tag)
    return (child.text or "").strip() if child is not None and child.text else default


def _flag(el: Element, tag: str, path: Path) -> bool:
    raw = _text(el, tag, "0")
    try:
        return float(raw) != 0
    except ValueError:
        raise DetforgeError(f"<{tag}> must be 0 or 1, got {raw!r}", path=path) from None


VocObject = tuple[str, list[float], bool, bool]
"""``(name, [x1, y1, x2, y2], difficult, truncated)``."""


def parse_voc_xml(
    path: str | os.PathLike[str], *, extras: dict[str, int] | None = None
) -> tuple[str, float, float, list[VocObject]]:
    """Parse one annotation XML.

    Returns ``(filename, width, height, objects)`` with objects
    ``(name, [x1, y1, x2, y2], difficult, truncated)``. ``extras``: where given, the counts of
    what is not kept are added to its ``pose``, ``occluded`` and ``parts`` entries.

    Coordinates are already shifted to detforge's continuous pixels (see module docstring);
    sizes are ``0`` when the XML lacks them, and as written otherwise (``read_voc`` judges
    them and the boxes by :mod:`detforge.data.validity`).
    """
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    p = Path(path)
    try:
        with open(p, "rb") as f:
            root = SafeET.fromstring(f.read())
    except DefusedXmlException as exc:
        raise DetforgeError(f"unsafe XML refused ({type(exc).__name__})", path=p) from None
    except SafeET.ParseError as exc:
        raise DetforgeError(f"malformed XML: {exc}", path=p) from None
    size = root.find("size")
    width, height = (parse_size(_text(size, k, "0")) for k in ("width", "height"))
    if math.isnan(width) or math.isnan(height):
        raise DetforgeError("<size> width/height are not numbers", path=p)
    objects = []
    for obj in root.iter("object"):
        name = _text(obj, "name")
        bb = obj.find("bndbox")
        if not name or bb is None:
            raise DetforgeError("<object> without <name> or <bndbox>", path=p)
        try:
            xmin, ymin, xmax, ymax = (float(_text(bb, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (ValueError, OverflowError):
            raise DetforgeError(
                f"<bndbox> of {name!r} has a missing or non-number value", path=p
            ) from None
        box = [xmin - 1.0, ymin - 1.0, xmax, ymax]
        objects.append((name, box, _flag(obj, "difficult", p), _flag(obj, "truncated", p)))
        if extras is not None:
            pose = _text(obj, "pose").lower()
            extras["pose"] = extras.get("pose", 0) + (pose not in ("", "unspecified"))
            occluded = _text(obj, "occluded", "0")
            extras["occluded"] = extras.get("occluded", 0) + (occluded not in ("0", "0.0"))
            extras["parts"] = extras.get("parts", 0) + len(obj.findall("part"))
    return _text(root, "filename"), width, height, objects


def _read_list(path: Path) -> list[str]:
    """Image ids of a split list, one a line; an id may contain spaces (``my image 1``).
    A line that is an id and a flag (``2008_000123  1``, as in VOC's per-class lists) gives
    the id when no annotation has the whole line as its name."""
    ann = path.parent.parent.parent / "Annotations"
    out = []
    for ln in read_text_lines(path):
        line = ln.strip()
        if not line or line.startswith("#"):
            continue
        first = line.split()[0]
        if first != line and not (ann / f"{line}.xml").is_file():
            line = first
        out.append(line)
    return out


def _is_class_list(stem: str, path: Path) -> bool:
    if not re.search(r"_(train|val|trainval|test)$", stem):
        return False
    from detforge.utils.textfile import read_regular_file

    text = read_regular_file(path).decode("utf-8-sig", errors="replace")
    first = next((ln.split() for ln in text.splitlines() if ln.strip()), [])
    return len(first) == 2 and first[1] in ("1", "-1", "0")


def _voc_splits(root: Path) -> tuple[list[str], dict[str, str]]:
    """Image ids in order and ``{id: split}`` from ``ImageSets/Main``."""
    main = root / "ImageSets" / "Main"
    lists = {p.stem: p for p in main.glob("*.txt")} if main.is_dir() else {}
    # Only split lists, not VOC's per-class lists ("aeroplane_train.txt": "id  1" lines).
    lists = {k: v for k, v in lists.items() if not _is_class_list(k, v)}
    order: list[str] = []
    split_of: dict[str, str] = {}
    for name in (
        "train",
        "val",
        "test",
        *sorted(set(lists) - {"train", "val", "test", "trainval"}),
    ):
        if name in lists:
            for image_id in _read_list(lists[name]):
                if image_id not in split_of:
                    split_of[image_id] = {"val": "valid", "all": ""}.get(name, name)
                    order.append(image_id)
    if "trainval" in lists:
        fallback = "valid" if "train" in lists else "train"
        for image_id in _read_list(lists["trainval"]):
            if image_id not in split_of:
                split_of[image_id] = fallback
                order.append(image_id)
    return order, split_of


def _find_image(folder: str, present: set[str], image_id: str, filename: str) -> str:
    """The image of an annotation, named like the XML file first (as the VOC devkit and
    torchvision read ``JPEGImages/<id>.jpg``; a ``<filename>`` copied with a renamed or
    duplicated XML is often stale): ``<filename>`` when it exists and has the id as its stem,
    else ``<id>.<any image suffix>`` that exists, else ``<filename>`` when it exists, else
    ``<filename>`` (or ``<id>.jpg``) as named.

    ``present`` is the set of file names in ``JPEGImages/`` (listed once, not stat'ed per image).
    """
    if filename and filename in present and os.path.splitext(filename)[0] == image_id:
        return f"{folder}/{filename}"
    for suffix in IMAGE_EXTENSIONS_ANY_CASE:
        if image_id + suffix in present:
            return f"{folder}/{image_id}{suffix}"
    if filename and filename in present:
        return f"{folder}/{filename}"
    return f"{folder}/{filename or image_id + '.jpg'}"


def _refuse_shared_images(paths: list[str], xmls: list[str]) -> None:
    """Two annotations of one image would list it twice (and lose the other image): a
    :class:`DetforgeError` naming both XML files."""
    first: dict[str, int] = {}
    for i, p in enumerate(paths):
        j = first.setdefault(p, i)
        if j != i:
            raise DetforgeError(
                f"{xmls[j]} and {xmls[i]} both describe the image {p} (a <filename> names "
                "it, and no image is named like that XML file); fix the <filename> or "
                "rename the files"
            )


def read_voc(root: str | os.PathLike[str], *, class_names: Sequence[str] | None = None) -> Dataset:
    """Read a VOC folder (``Annotations/``, ``JPEGImages/``, optional ``ImageSets/Main``).

    Without split lists every annotation is read with split ``""``. Boxes come out in
    ``XYXY_PIXEL`` (continuous; see the module docstring). An object whose class is not in
    ``class_names`` (when given) is a :class:`DetforgeError`.
    """
    r = Path(root)
    ann = r / "Annotations"
    if not ann.is_dir():
        raise DetforgeError("not a Pascal VOC folder: no Annotations/ inside", path=r)
    order, split_of = _voc_splits(r)
    listed = set(order)
    unlisted = sorted(p.stem for p in ann.glob("*.xml") if p.stem not in listed)
    warnings = []
    if order and unlisted:
        warnings.append(
            f"{len(unlisted)} annotations are in no ImageSets/Main list; read with no split"
        )
    order += unlisted
    if not order:
        raise DetforgeError("Annotations/ holds no .xml files", path=ann)
    if class_names is None and (r / "labels.txt").is_file():
        class_names = read_class_list(r / "labels.txt")
    folder = str(r / "JPEGImages")
    try:
        present = {e.name for e in os.scandir(folder)}
    except OSError:
        present = set()
    paths: list[str] = []
    widths: list[int] = []
    heights: list[int] = []
    xml_paths: list[str] = []
    renamed: list[str] = []
    box_image: list[int] = []
    box_where: list[tuple[str, int]] = []  # (xml, object number) per box
    bad_sizes: list[InvalidBox] = []
    box_names: list[str] = []
    coords: list[list[float]] = []
    diff: list[bool] = []
    trunc: list[bool] = []
    extras: dict[str, int] = {}
    first_extra: str | None = None
    for i, image_id in enumerate(progress(order, total=len(order), desc="reading VOC", unit="xml")):
        xml = ann / f"{image_id}.xml"
        if not xml.is_file():
            raise DetforgeError(
                f"image id {image_id!r} is listed in ImageSets/Main but has no annotation",
                path=xml,
            )
        before = sum(extras.values())
        filename, w, h, objects = parse_voc_xml(xml, extras=extras)
        if first_extra is None and sum(extras.values()) > before:
            first_extra = str(xml)
        paths.append(_find_image(folder, present, image_id, filename))
        xml_paths.append(str(xml))
        if filename and os.path.basename(paths[-1]) != filename:
            renamed.append(f"{xml.name} says {filename}, read as {os.path.basename(paths[-1])}")
        if not (size_ok(w) and size_ok(h)):
            split = canonical_split(split_of.get(image_id, ""))
            bad_sizes.append(
                InvalidBox(
                    "image-size-impossible", str(xml), "<size>", f"{w:g} x {h:g}", paths[-1], split
                )
            )
            w = h = 0  # unknown: read from the image header when needed
        widths.append(int(w))
        heights.append(int(h))
        for k, (name, box, d, t) in enumerate(objects, 1):
            box_where.append((str(xml), k))
            box_image.append(i)
            box_names.append(name)
            coords.append(box)
            diff.append(d)
            trunc.append(t)
    _refuse_shared_images(paths, xml_paths)
    if renamed:
        warnings.append(
            f"{len(renamed)} annotation(s) name another <filename> than their XML file; the "
            f"image named like the XML file was used (first: {renamed[0]})"
        )
    if class_names is None:
        class_names = sorted(set(box_names))
    index = {n: k for k, n in enumerate(class_names)}
    unknown = sorted(set(box_names) - set(index))
    if unknown:
        raise DetforgeError(
            f"objects use class names not in the class list: {unknown[:10]}; add them to "
            "labels.txt / the label map",
            path=r,
        )
    xyxy = np.asarray(coords, dtype=np.float64).reshape(-1, 4)
    ds = make_dataset(
        list(class_names),
        paths=paths,
        widths=widths,
        heights=heights,
        splits=[split_of.get(i, "") for i in order],
        box_image=box_image,
        box_cls=[index[n] for n in box_names],
        box_coords=xyxy,
        box_format=BoxFormat.XYXY_PIXEL,
        difficult=diff,
        truncated=trunc,
        meta={
            "source": str(r),
            "format": "voc",
            "warnings": warnings,
            "invalid_boxes": bad_sizes,
            "xml_paths": xml_paths,
            "voc_extras": [] if first_extra is None else [{"path": first_extra, **extras}],
        },
    )
    # judged as written: (xmin, ymin, xmax - xmin, ymax - ymin); xmin == xmax is no box
    written = np.column_stack([xyxy[:, :2] + 1, xyxy[:, 2:] - xyxy[:, :2] - 1])

    def where(j: int) -> tuple[str, str, str]:
        x1, y1, x2, y2 = xyxy[j].tolist()
        detail = f"{box_names[j]!r} box xmin={x1 + 1:g} xmax={x2:g} ymin={y1 + 1:g} ymax={y2:g}"
        return box_where[j][0], f"object {box_where[j][1]}", detail

    return screen_boxes(ds, box_codes(written), where=where)


def _num(v: float) -> str:
    return f"{v:.10g}"


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _object_xml(name: str, x1: float, y1: float, x2: float, y2: float, d: bool, t: bool) -> str:
    """One ``<object>`` element (``name`` already XML-escaped; continuous-pixel box in, VOC
    1-based pixels out)."""
    return (
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>{int(t)}</truncated>\n\t\t<difficult>{int(d)}</difficult>\n"
        f"\t\t<bndbox>\n\t\t\t<xmin>{_num(x1 + 1)}</xmin>\n\t\t\t<ymin>{_num(y1 + 1)}</ymin>\n"
        f"\t\t\t<xmax>{_num(x2)}</xmax>\n\t\t\t<ymax>{_num(y2)}</ymax>\n\t\t</bndbox>\n"
        "\t</object>\n"
    )


def _header_xml(filename: str, width: int, height: int, folder: str = "JPEGImages") -> str:
    return (
        f"<annotation>\n\t<folder>{_xml_escape(folder)}</folder>\n"
        f"\t<filename>{_xml_escape(filename)}</filename>\n"
        "\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
        "\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n"
    )


def format_voc_xml(
    *,
    filename: str,
    width: int,
    height: int,
    objects: Sequence[tuple[str, Sequence[float], bool, bool]],
    folder: str = "JPEGImages",
) -> str:
    """VOC XML text for one image; ``objects`` hold continuous-pixel ``x1, y1, x2, y2`` boxes."""
    body = "".join(
        _object_xml(_xml_escape(n), b[0], b[1], b[2], b[3], d, t) for n, b, d, t in objects
    )
    return _header_xml(filename, width, height, folder) + body + "</annotation>\n"


def write_voc(ds: Dataset, out_dir: str | os.PathLike[str], *, images: ImageMode = "link") -> Path:
    """Write ``ds`` as a VOC folder; returns its root.

    Image file names are made unique (clashing names get their folder prefixed); the XML
    ``<filename>`` and ``ImageSets/Main/<split>.txt`` (``val`` for ``valid``; ``all.txt`` for
    images without a split) follow. ``labels.txt`` keeps the class order, including classes
    without boxes. Crowd boxes are written as ordinary boxes: callers drop them first.
    """
    out = Path(out_dir)
    ds = ensure_sizes(ds)
    xyxy = ds.coords_as(BoxFormat.XYXY_PIXEL) if ds.num_boxes else np.zeros((0, 4))
    names = unique_file_names([str(p) for p in ds.images.path])
    starts = np.searchsorted(ds.boxes.image, np.arange(ds.num_images + 1))
    names_of = [_xml_escape(n) for n in ds.class_names]
    objects = [
        _object_xml(names_of[c], x1, y1, x2, y2, d, t)
        for c, (x1, y1, x2, y2), d, t in zip(
            ds.boxes.cls.tolist(),
            xyxy.tolist(),
            ds.boxes.difficult.tolist(),
            ds.boxes.truncated.tolist(),
            strict=True,
        )
    ]
    starts_l = starts.tolist()
    widths, heights = ds.images.width.tolist(), ds.images.height.tolist()
    splits, sources = ds.images.split.tolist(), ds.images.path.tolist()
    lists: dict[str, list[str]] = {}
    with staged_dir(out / "Annotations") as stage:
        base = str(stage)
        for i in progress(
            range(ds.num_images), total=ds.num_images, desc="writing VOC", unit="img"
        ):
            stem = os.path.splitext(names[i])[0]
            text = (
                _header_xml(names[i], widths[i], heights[i])
                + "".join(objects[starts_l[i] : starts_l[i + 1]])
                + "</annotation>\n"
            )
            with open(f"{base}/{stem}.xml", "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            if images != "none":
                place_file(sources[i], out / "JPEGImages" / names[i], images)
            lists.setdefault(split_file_name(str(splits[i])), []).append(stem)
    for split, stems in lists.items():
        atomic_write_text(
            out / "ImageSets" / "Main" / f"{split}.txt", "".join(s + "\n" for s in stems)
        )
    atomic_write_text(out / "labels.txt", "".join(n + "\n" for n in ds.class_names))
    return out
