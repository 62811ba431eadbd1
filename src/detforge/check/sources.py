"""Where a Darknet-style dataset's images, lists and class names are, without reading labels.

:func:`gather_sources` resolves a ``.data`` file, an image list, a folder of images, or an
Ultralytics dataset YAML (its labels are Darknet lines too) into list entries
``(image, split, list file, line)``, the class names as written and findings for anything
missing. Nothing here raises for bad content; a source that does not exist is a
:class:`DetforgeError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detforge.check.dataset import raw_name_lines
from detforge.check.files import read_text
from detforge.check.findings import Finding, finding
from detforge.data.dataset import SPLITS, canonical_split
from detforge.data.lists import list_images
from detforge.errors import DetforgeError
from detforge.formats.darknet import (
    DataFile,
    PathMap,
    read_data_file,
    read_image_list_lines,
    split_from_list_name,
)
from detforge.formats.darknet_files import missing_hint

Entry = tuple[str, str, str, int | None]
"""``(image path, split, file that named it, 1-based line or None)``."""


@dataclass(eq=False)
class Sources:
    """What :func:`gather_sources` found."""

    entries: list[Entry] = field(default_factory=list)
    lists: dict[str, str] = field(default_factory=dict)
    data_file: DataFile | None = None
    names: list[str] | None = None
    """Class names as written (not stripped), ``None`` when no names file was found."""
    names_path: str | None = None
    names_have_lines: bool = True
    """Whether class ``k`` is on line ``k + 1`` of ``names_path`` (a ``.names`` file)."""
    declared_classes: int | None = None
    """``classes=`` of a ``.data`` file or ``nc:`` of a YAML."""
    declared_at: tuple[str, int | None] | None = None
    label_map: str | None = None
    """A TF label map found beside the dataset (``label_map.pbtxt``, ``labels.pbtxt`` or the
    only ``*.pbtxt``), compared with the names unless ``--label-map`` names another."""
    findings: list[Finding] = field(default_factory=list)


def find_label_map(folder: Path) -> str | None:
    """``label_map.pbtxt`` / ``labels.pbtxt`` / the only ``*.pbtxt`` in ``folder``."""
    for name in ("label_map.pbtxt", "labels.pbtxt", "label_map.pbtx"):
        if (folder / name).is_file():
            return str(folder / name)
    found = sorted(folder.glob("*.pbtxt"))
    return str(found[0]) if len(found) == 1 else None


def _find_names(folder: Path) -> str | None:
    found = sorted(folder.glob("*.names"))
    if found:
        return str(found[0])
    classes = folder / "classes.txt"
    return str(classes) if classes.is_file() else None


def _from_data_file(out: Sources, src: Path, path_map: PathMap) -> None:
    df = read_data_file(src, path_map=path_map)
    out.data_file = df
    if df.classes is not None:
        out.declared_classes, out.declared_at = df.classes, (str(src), df.lines.get("classes"))
    for key, value in df.extra.items():
        out.findings.append(
            finding(
                "data-unknown-key",
                f"key {key!r} = {value!r} is not used by Darknet (typo?); it is ignored",
                path=str(src),
                line=df.lines.get(key),
            )
        )
    for key in ("train", "valid", "test"):
        lp = getattr(df, key)
        if lp is None:
            continue
        if not os.path.isfile(lp):
            out.findings.append(
                finding(
                    "list-missing",
                    f"{key} list {lp} does not exist (relative paths are resolved against "
                    "the .data file's folder)" + missing_hint(lp),
                    path=str(src),
                    line=df.lines.get(key),
                )
            )
            continue
        same = [k for k, v in out.lists.items() if os.path.samefile(v, lp)]
        if same:
            out.findings.append(
                finding(
                    "split-overlap",
                    f"{key} uses the same list as {same[0]} ({lp}): every {key} image is a "
                    f"{same[0]} image, so evaluation measures memorisation -- make a separate "
                    f"{key} list (detforge split; --fix drops the {key} split)",
                    path=str(src),
                    line=df.lines.get(key),
                )
            )
            continue
        out.lists[key] = lp
    if df.names is not None:
        if os.path.isfile(df.names):
            out.names_path = df.names
        else:
            out.findings.append(
                finding(
                    "names-missing",
                    f"names file {df.names} does not exist" + missing_hint(df.names),
                    path=str(src),
                    line=df.lines.get("names"),
                )
            )


def _yaml_names(data: dict[str, Any]) -> list[str] | None:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            return None
        return [by_id.get(k, "") for k in range(max(by_id) + 1)] if by_id else []
    if isinstance(names, list):
        return [str(n) for n in names]
    return None


def _from_yaml(out: Sources, src: Path) -> None:
    from detforge.utils.yamlfile import load_yaml

    data = load_yaml(src, "dataset YAML")
    if not isinstance(data, dict):
        raise DetforgeError("dataset YAML must be a mapping with train/val/names", path=src)
    out.names = _yaml_names(data)
    out.names_path, out.names_have_lines = str(src), False
    if out.names is None:
        out.findings.append(
            finding(
                "names-missing",
                "the YAML has no usable 'names' (a dict {0: name, ...} or a list)",
                path=str(src),
            )
        )
    nc = data.get("nc")
    if isinstance(nc, int):
        out.declared_classes, out.declared_at = nc, (str(src), None)
    root = Path(str(data.get("path") or "."))
    if not root.is_absolute():
        root = src.parent / root
    for key in ("train", "val", "test"):
        value = data.get(key)
        if value is None:
            continue
        split = canonical_split(key)
        for entry in value if isinstance(value, list) else [value]:
            p = Path(str(entry))
            p = p if p.is_absolute() else root / p
            if p.is_dir():
                out.entries += [(img, split, str(p), None) for img in list_images([p])]
            elif p.is_file():
                out.lists[split if split not in out.lists else f"{split}:{p}"] = str(p)
            else:
                out.findings.append(
                    finding(
                        "list-missing",
                        f"{key}: {entry} is neither a folder of images nor a list ({p})",
                        path=str(src),
                    )
                )


def gather_sources(source: str | os.PathLike[str], *, path_map: PathMap = ()) -> Sources:
    """Resolve ``source`` (see the module docstring) into :class:`Sources`."""
    src = Path(source)
    out = Sources()
    if src.is_dir():
        for p in list_images([src]):
            first = os.path.relpath(p, src).replace("\\", "/").split("/")[0]
            s = canonical_split(first)
            out.entries.append((p, s if s in SPLITS else "", str(src), None))
        out.names_path = _find_names(src)
    elif src.suffix.lower() == ".data":
        _from_data_file(out, src, path_map)
    elif src.suffix.lower() in (".yaml", ".yml"):
        _from_yaml(out, src)
    elif src.is_file():
        out.lists[split_from_list_name(src)] = str(src)
        out.names_path = _find_names(src.parent)
    else:
        raise DetforgeError(
            "dataset not found: give a .data file, an image list, a folder of images or a "
            "dataset YAML" + missing_hint(str(src)),
            path=src,
        )
    for key, lp in out.lists.items():
        split = key.split(":")[0]
        try:
            got, lines = read_image_list_lines(lp, path_map=path_map)
        except DetforgeError as exc:
            out.findings.append(finding("read-error", exc.message, path=lp))
            continue
        out.entries += [(p, split, lp, n) for p, n in zip(got, lines, strict=True)]
    folders = [src if src.is_dir() else src.parent]
    if out.names_path is not None:
        folders.append(Path(out.names_path).parent)
    for folder in dict.fromkeys(folders):
        out.label_map = out.label_map or find_label_map(folder)
    if out.names is None and out.names_path is not None and out.names_have_lines:
        text, why = read_text(out.names_path)
        if text is None:
            out.findings.append(
                finding("read-error", f"cannot read the names: {why}", path=out.names_path)
            )
        else:
            out.names = raw_name_lines(text)
    return out
