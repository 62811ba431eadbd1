"""Ultralytics-style datasets: a YAML file plus ``images/<split>/`` and ``labels/<split>/``.

The YAML (written as ``data.yaml``)::

    path: /abs/dataset/root      # other paths are relative to it
    train: images/train          # a folder of images, a .txt list of images, or a list of either
    val: images/val
    test: images/test            # optional
    names: {0: cat, 1: dog}      # a dict (a plain list is read too)

Labels are Darknet lines (``class cx cy w h``, normalized) in a ``.txt`` found by replacing the
last ``/images/`` of the image path with ``/labels/`` and the suffix with ``.txt``; a missing
label file is a negative image. Split keys ``val`` <-> detforge's ``valid``; other top-level keys
whose value names an existing folder or list are read as extra splits. Images without a split
are written into ``train`` (the format has no "no split"). Segmentation labels (polygons,
``class x1 y1 x2 y2 ...``) are read as their bounding boxes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, canonical_split, make_dataset
from detforge.data.lists import RepeatedEntry, list_images, repeated_entries
from detforge.errors import DetforgeError
from detforge.formats.common import split_file_name, staged_dir, unique_file_names
from detforge.formats.darknet.files import PathMap, read_image_list_lines, refuse_duplicate_names
from detforge.formats.darknet.sources import Problem
from detforge.utils.io import ImageMode, atomic_write_text, place_file
from detforge.utils.progress import progress
from detforge.utils.textfile import read_regular_file

_NOT_SPLITS = frozenset(
    {"path", "names", "nc", "download", "kpt_shape", "flip_idx", "channels", "yaml_file"}
)


def ultralytics_label_path(image_path: str) -> str:
    """``.../images/x/a.jpg`` -> ``.../labels/x/a.txt`` (last ``images`` folder replaced)."""
    p = image_path.replace("\\", "/")
    head, sep, tail = p.rpartition("/images/")
    if sep:
        p = f"{head}/labels/{tail}"
    return os.path.splitext(p)[0] + ".txt"


def load_dataset_yaml(path: Path) -> dict[str, Any]:
    """The dataset YAML as a mapping; :class:`DetforgeError` for a file that is missing, not
    YAML, not a mapping, or hostile (aliases, huge, deeply nested:
    :mod:`detforge.utils.yamlfile`)."""
    from detforge.utils.yamlfile import load_yaml

    data = load_yaml(path, "dataset YAML")
    if not isinstance(data, dict):
        raise DetforgeError("dataset YAML must be a mapping with train/val/names", path=path)
    return data


def yaml_names(data: dict[str, Any]) -> list[str] | None:
    """``names`` as written: a list, or a dict ``{id: name}`` (ids without a name give ``""``);
    ``None`` when absent or unusable."""
    names = data.get("names")
    if isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            return None
        if any(k < 0 for k in by_id):
            return None
        return [by_id.get(k, "") for k in range(max(by_id) + 1)] if by_id else []
    if isinstance(names, list):
        return [str(n) for n in names]
    return None


@dataclass(eq=False)
class YamlSources:
    """What a dataset YAML names (one row per image entry), before any label is read."""

    path: Path
    data: dict[str, Any]
    names: list[str] | None
    paths: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    origins: list[tuple[str, int | None]] = field(default_factory=list)
    """``(file, line)`` naming each image: a list and its line, else the folder or the YAML."""
    lists: dict[str, str] = field(default_factory=dict)
    """``split`` (or ``split:path`` for a second list of a split) -> list file read."""
    problems: list[Problem] = field(default_factory=list)


def resolve_yaml(
    yaml_path: str | os.PathLike[str], *, path_map: PathMap = (), strict: bool = True
) -> YamlSources:
    """What an Ultralytics dataset YAML names, for the reader and the checker alike.

    Paths are relative to ``path:`` (itself relative to the YAML's folder). ``train``/``val``/
    ``test`` and any other key whose entries all exist name splits; each entry is a folder (its
    images, recursively), a ``.txt`` list (the one list reader) or one image. An entry of
    ``train``/``val``/``test`` that does not exist, or an unreadable list, raises
    (``strict``) or is a :class:`Problem` (``list-missing``, ``read-error``).
    """
    yp = Path(yaml_path)
    data = load_dataset_yaml(yp)
    out = YamlSources(path=yp, data=data, names=yaml_names(data))
    root = Path(str(data.get("path") or "."))
    if not root.is_absolute():
        root = yp.parent / root
    keys: list[str] = [k for k in ("train", "val", "test") if k in data]
    keys += [k for k in data if k not in keys and k not in _NOT_SPLITS]
    for key in keys:
        value = data[key]
        entries = value if isinstance(value, list) else [value]
        if not entries or not all(isinstance(e, str) for e in entries):
            continue
        found = [Path(e) if Path(e).is_absolute() else root / e for e in entries]
        standard = key in ("train", "val", "test")
        if not standard and not all(f.exists() for f in found):
            continue  # not a split, just another setting
        split = canonical_split(str(key))
        for entry, p in zip(entries, found, strict=True):
            _yaml_entry(out, split, entry, p, str(key), path_map, strict)
    return out


def _yaml_entry(
    out: YamlSources, split: str, entry: str, p: Path, key: str, path_map: PathMap, strict: bool
) -> None:
    def problem(q: Problem) -> None:
        if strict:
            raise DetforgeError(q.message, path=q.path, line=q.line)
        out.problems.append(q)

    if p.is_dir():
        got = list_images([p])
        out.paths += got
        out.origins += [(str(p), None)] * len(got)
    elif p.is_file() and p.suffix.lower() == ".txt":
        try:
            got, lines = read_image_list_lines(p, path_map=path_map)
        except DetforgeError as exc:
            problem(Problem("read-error", exc.message, path=str(p), line=exc.line))
            return
        out.lists[split if split not in out.lists else f"{split}:{p}"] = str(p)
        out.paths += got
        out.origins += [(str(p), n) for n in lines]
    elif p.is_file():
        got = [str(p)]
        out.paths += got
        out.origins.append((str(out.path), None))
    else:
        msg = f"{key}: {entry!r} is neither a folder of images nor a list ({p})"
        problem(Problem("list-missing", msg, path=str(out.path)))
        return
    out.splits += [split] * len(got)


def parse_polygon_labels(
    text: str, *, path: str | None = None
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Ultralytics label lines that may be segments: ``class x1 y1 x2 y2 ...`` (normalized).

    A line of 5 values is a box (``class cx cy w h``); a line with an odd count of 7 or more is
    a polygon, read as its bounding box. Returns ``cls (K,)`` and ``CXCYWH_NORM`` ``(K, 4)``;
    anything else is a :class:`DetforgeError` with the 1-based line.
    """
    cls: list[int] = []
    boxes: list[list[float]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 5 and (len(parts) < 7 or len(parts) % 2 == 0):
            raise DetforgeError(
                f"expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...', got {len(parts)} "
                "values",
                path=path,
                line=n,
            )
        try:
            c, vals = int(parts[0]), [float(v) for v in parts[1:]]
        except ValueError:
            raise DetforgeError(f"not numbers: {raw.strip()!r}", path=path, line=n) from None
        if len(vals) == 4:
            boxes.append(vals)
        else:
            xs, ys = vals[0::2], vals[1::2]
            x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
            boxes.append([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
        cls.append(c)
    return np.asarray(cls, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _name_lines(path: Path, n: int) -> list[int | None]:
    """The line of ``data.yaml`` each of the ``n`` class names is written on (``None`` where
    it cannot be told), for an error about the names. The file already passed
    :func:`load_dataset_yaml`, so composing it again is safe."""
    import yaml

    lines: list[int | None] = [None] * n
    try:
        root = yaml.compose(path.read_text(encoding="utf-8-sig"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return lines
    if not isinstance(root, yaml.MappingNode):
        return lines
    node = next((v for k, v in root.value if k.value == "names"), None)
    if isinstance(node, yaml.SequenceNode):
        items = list(enumerate(node.value))
    elif isinstance(node, yaml.MappingNode):
        items = [(int(k.value), v) for k, v in node.value if str(k.value).lstrip("-").isdigit()]
    else:
        return lines
    for k, v in items:
        if 0 <= k < n:
            lines[k] = v.start_mark.line + 1
    return lines


# Over 80 lines on purpose: the YAML's splits, then every label file, in order.
def read_ultralytics(yaml_path: str | os.PathLike[str]) -> Dataset:
    """Read an Ultralytics dataset YAML and its label files into a :class:`Dataset`.

    Boxes are ``CXCYWH_NORM``; image sizes are left unknown (``0``) until a writer needs them.
    A bad label line raises :class:`DetforgeError` with the label file and line.

    Every entry is an image, as Ultralytics reads them: an image named again in its split (a
    list line or folder repeated) is another image, as Ultralytics trains on it once per entry,
    and each repeat is listed in ``meta["repeated_entries"]``
    (:class:`~detforge.data.lists.RepeatedEntry`, only when there are any; ``info`` counts the
    image once, ``convert`` says what becomes of it). An image in two splits is in both: a leak,
    which ``info`` and ``check`` (``split-overlap``) report.
    """
    from detforge.formats.darknet.labels import parse_label_text

    found = resolve_yaml(yaml_path)
    yp, names = found.path, found.names
    if names is None:
        raise DetforgeError("the YAML needs 'names' (a dict {0: name, ...} or a list)", path=yp)
    if "" in names and isinstance(found.data.get("names"), dict):
        raise DetforgeError(f"'names' ids must be 0..{len(names) - 1} without gaps", path=yp)
    if len(set(names)) < len(names):
        refuse_duplicate_names(
            names,
            _name_lines(yp, len(names)),
            path=yp,
            hint=" ('detforge check --fix' renames the second)",
        )
    nc = found.data.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc != len(names)):
        raise DetforgeError(f"'nc: {nc}' disagrees with {len(names)} names", path=yp)
    paths, splits = found.paths, found.splits
    if not paths:
        raise DetforgeError("the YAML names no images (train/val/test are empty)", path=yp)
    box_image: list[np.ndarray[Any, Any]] = []
    box_cls: list[np.ndarray[Any, Any]] = []
    coords: list[np.ndarray[Any, Any]] = []
    polygons = 0
    label_paths = [""] * len(paths)
    for i, img in enumerate(progress(paths, desc="reading labels", unit="img")):
        lp = ultralytics_label_path(img)
        try:
            text = read_regular_file(lp).decode("utf-8")
        except FileNotFoundError:
            continue
        except UnicodeDecodeError:
            raise DetforgeError("label file is not UTF-8 text", path=lp) from None
        except OSError as exc:
            raise DetforgeError(f"cannot read label file: {exc.strerror}", path=lp) from None
        label_paths[i] = str(lp)
        try:
            cls, xywh = parse_label_text(text, path=lp)
        except DetforgeError:
            cls, xywh = parse_polygon_labels(text, path=lp)  # segmentation labels, or re-raise
            polygons += 1
        box_image.append(np.full(len(cls), i, dtype=np.int64))
        box_cls.append(cls)
        coords.append(xywh)
    all_cls = np.concatenate(box_cls) if box_cls else np.zeros(0, dtype=np.int64)
    if len(all_cls) and (all_cls.min() < 0 or all_cls.max() >= len(names)):
        raise DetforgeError(
            f"labels use class id {int(all_cls.max())} but the YAML has {len(names)} names",
            path=yp,
        )
    meta: dict[str, Any] = {
        "source": str(yp),
        "format": "ultralytics",
        "notes": [f"{polygons} label files hold polygons; read as their bounding boxes"]
        if polygons
        else [],
    }
    repeated = [
        RepeatedEntry(paths[i], *found.origins[i], *found.origins[f])
        for i, f in repeated_entries(paths, splits)
    ]
    if repeated:
        meta["repeated_entries"] = repeated
    ds = make_dataset(
        names,
        paths=paths,
        splits=splits,
        box_image=np.concatenate(box_image) if box_image else [],
        box_cls=all_cls,
        box_coords=np.concatenate(coords) if coords else None,
        box_format=BoxFormat.CXCYWH_NORM,
        meta=meta,
    )
    from detforge.data.validity import screen_label_boxes

    return screen_label_boxes(ds, label_paths)


def _label_texts(ds: Dataset) -> Iterator[str]:
    """Darknet label text per image (``class cx cy w h``, 6 decimals, as ``format_label_lines``).

    Formats every box once over plain lists, then joins per image: no per-image numpy work.
    """
    lines = [
        f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
        for c, (x, y, w, h) in zip(ds.boxes.cls.tolist(), ds.boxes.coords.tolist(), strict=True)
    ]
    starts = np.searchsorted(ds.boxes.image, np.arange(ds.num_images + 1)).tolist()
    for i in range(ds.num_images):
        yield "".join(lines[starts[i] : starts[i + 1]])


def _yaml_scalar(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)  # JSON strings are valid YAML scalars


def write_ultralytics(
    ds: Dataset, out_dir: str | os.PathLike[str], *, images: ImageMode = "link"
) -> Path:
    """Write ``images/<split>/``, ``labels/<split>/`` and ``data.yaml``; returns the YAML path.

    Every image gets a label file (empty for negatives). Needs no image sizes: boxes must be
    ``CXCYWH_NORM`` or convertible to it. Crowd boxes are written as ordinary boxes: callers
    drop them first.
    """
    out = Path(out_dir).resolve()
    if ds.boxes.format is not BoxFormat.CXCYWH_NORM:
        from detforge.formats.common import ensure_sizes

        ds = ensure_sizes(ds).with_format(BoxFormat.CXCYWH_NORM)
    folders = [split_file_name(str(s) or "train") for s in ds.images.split]
    names: list[str] = [""] * ds.num_images
    for folder in sorted(set(folders)):
        idx = [i for i, f in enumerate(folders) if f == folder]
        for i, n in zip(idx, unique_file_names([str(ds.images.path[i]) for i in idx]), strict=True):
            names[i] = n
    with staged_dir(out / "labels") as stage:
        for folder in set(folders):
            (stage / folder).mkdir(parents=True, exist_ok=True)
        texts = progress(_label_texts(ds), total=ds.num_images, desc="writing labels", unit="img")
        base = str(stage)
        for i, text in enumerate(texts):
            label = f"{base}/{folders[i]}/{os.path.splitext(names[i])[0]}.txt"
            with open(label, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
    if images != "none":
        for i in progress(range(ds.num_images), desc="placing images", unit="img"):
            place_file(str(ds.images.path[i]), out / "images" / folders[i] / names[i], images)
    lines = [f"path: {_yaml_scalar(str(out))}"]
    order: list[str] = [f for f in ("train", "val", "test") if f in folders]
    order += sorted(set(folders) - set(order))
    lines += [f"{f}: images/{f}" for f in order]
    lines.append(f"nc: {ds.num_classes}")
    lines.append("names:")
    lines += [f"  {k}: {_yaml_scalar(n)}" for k, n in enumerate(ds.class_names)]
    yaml_path = out / "data.yaml"
    atomic_write_text(yaml_path, "\n".join(lines) + "\n")
    return yaml_path
