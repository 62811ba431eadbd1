"""Where a Darknet dataset's images come from: a ``.data`` file, an image list or a folder
(used by :func:`detforge.formats.darknet.read_darknet`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from detforge.data.dataset import SPLITS, canonical_split
from detforge.data.lists import list_images
from detforge.errors import DetforgeError
from detforge.formats.darknet_files import (
    PathMap,
    missing_hint,
    read_data_file,
    read_image_list_lines,
    read_names,
)


def split_from_list_name(path: str | os.PathLike[str]) -> str:
    """Guess a split from a list file name: ``train.txt`` -> ``train``, ``val_10.txt`` ->
    ``valid``, anything else -> ``""``."""
    stem = Path(path).stem.lower()
    for token in [stem, *re.split(r"[_\-. ]", stem)]:
        s = canonical_split(token)
        if s in SPLITS:
            return s
    return ""


def _find_names(folder: Path) -> Path | None:
    """A ``*.names`` file (or ``classes.txt``) in ``folder``."""
    found = sorted(folder.glob("*.names"))
    if found:
        return found[0]
    classes = folder / "classes.txt"
    return classes if classes.is_file() else None


def gather_sources(
    source: Path, path_map: PathMap
) -> tuple[list[str], list[str], list[tuple[str, int | None]], list[str] | None, dict[str, Any]]:
    """Image paths, their splits, where each was named ``(file, line)``, class names (or None
    to derive) and reader notes, for a ``.data`` file, a list or a folder."""
    meta: dict[str, Any] = {"source": str(source), "notes": []}
    paths: list[str] = []
    splits: list[str] = []
    origins: list[tuple[str, int | None]] = []
    names: list[str] | None = None
    if source.is_dir():
        found = list_images([source])
        paths = found
        for p in found:
            first = os.path.relpath(p, source).replace("\\", "/").split("/")[0]
            s = canonical_split(first)
            splits.append(s if s in SPLITS else "")
        origins = [(str(source), None)] * len(found)
        names_file = _find_names(source)
        if names_file is not None:
            names = read_names(names_file)
    elif source.suffix.lower() == ".data":
        df = read_data_file(source, path_map=path_map)
        meta["data_file"] = df
        meta["notes"].extend(df.notes)
        if df.extra:
            meta["notes"].append(
                f"{source}: keys Darknet does not use, kept: {', '.join(df.extra)}"
            )
        for key in ("train", "valid", "test"):
            list_path = getattr(df, key)
            if list_path is None:
                continue
            if os.path.isdir(list_path):  # a folder instead of a list: its images
                found = list_images([list_path])
                paths += found
                splits += [key] * len(found)
                origins += [(list_path, None)] * len(found)
                continue
            if not os.path.isfile(list_path):
                f, line = df.where(key)
                raise DetforgeError(
                    f"{key} list not found: {list_path} (relative paths are resolved against "
                    "the .data file's folder)" + missing_hint(list_path),
                    path=f,
                    line=line,
                )
            got, lines = read_image_list_lines(list_path, path_map=path_map)
            paths += got
            splits += [key] * len(got)
            origins += [(list_path, n) for n in lines]
        if df.names is not None:
            if not os.path.isfile(df.names):
                f, line = df.where("names")
                raise DetforgeError(
                    f"names file not found: {df.names}" + missing_hint(df.names),
                    path=f,
                    line=line,
                )
            names = read_names(df.names)
        elif df.classes is not None:
            names = [str(i) for i in range(df.classes)]
            meta["notes"].append(
                f"{source}: no 'names' key; classes are called 0..{df.classes - 1}"
            )
        if df.classes is not None and names is not None and df.classes != len(names):
            meta["notes"].append(
                f"{source}: classes = {df.classes} but the names file has {len(names)} names"
            )
    elif source.is_file():
        got, lines = read_image_list_lines(source, path_map=path_map)
        paths, origins = got, [(str(source), n) for n in lines]
        splits = [split_from_list_name(source)] * len(got)
        names_file = _find_names(source.parent)
        if names_file is not None:
            names = read_names(names_file)
    else:
        raise DetforgeError(
            "dataset not found: give a .data file, an image list or a folder of images"
            + missing_hint(str(source)),
            path=source,
        )
    return paths, splits, origins, names, meta
