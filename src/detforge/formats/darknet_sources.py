"""Where a Darknet dataset's images come from: a ``.data`` file, an image list or a folder
(used by :func:`detforge.formats.darknet.read_darknet`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from detforge.data.dataset import SPLITS, canonical_split
from detforge.data.lists import list_images
from detforge.errors import DetforgeError
from detforge.formats.darknet_files import (
    PathMap,
    darknet_roots,
    missing_hint,
    read_data_file,
    read_image_list_entries,
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


@dataclass
class Sources:
    """The images a dataset names, before anything is read from them."""

    paths: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    origins: list[tuple[str, int | None]] = field(default_factory=list)
    """``(file, line)`` naming each image (line ``None`` for images found in a folder)."""
    list_dirs: list[str] = field(default_factory=list)
    """Per image: the folder of the list that named it by a *relative* path, else ``""``."""
    names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    roots: list[Path] = field(default_factory=list)
    """Where Darknet may have been run from, to try for relative entries not found."""

    def add(
        self,
        paths: list[str],
        split: str,
        file: str,
        lines: list[int] | None,
        relative: list[bool] | None,
    ) -> None:
        self.paths += paths
        self.splits += [split] * len(paths)
        n = len(paths)
        self.origins += zip(repeat(file, n), lines, strict=True) if lines else [(file, None)] * n
        d = os.path.dirname(os.path.abspath(file))
        if not relative or not any(relative):
            self.list_dirs += [""] * n
        else:
            self.list_dirs += [d] * n if all(relative) else [d if r else "" for r in relative]


def gather_sources(source: Path, path_map: PathMap) -> Sources:
    """What a ``.data`` file, an image list or a folder names (paths, splits, origins, class
    names or ``None`` to derive them, reader notes in ``meta``)."""
    src = Sources(meta={"source": str(source), "notes": []})
    meta = src.meta
    if source.is_dir():
        found = list_images([source])
        src.add(found, "", str(source), None, None)
        for i, p in enumerate(found):
            # a split folder among the first two levels: train/x.jpg, images/train/x.jpg
            parts = os.path.relpath(p, source).replace("\\", "/").split("/")[:-1][:2]
            named = [canonical_split(d) for d in parts]
            src.splits[i] = next((s for s in named if s in SPLITS), "")
        names_file = _find_names(source)
        if names_file is not None:
            src.names = read_names(names_file)
    elif source.suffix.lower() == ".data":
        df = read_data_file(source, path_map=path_map)
        meta["data_file"] = df
        meta["notes"].extend(df.notes)
        src.roots = darknet_roots(source.parent, df.fallback_base)
        if df.extra:
            meta["notes"].append(
                f"{source}: keys Darknet does not use, kept: {', '.join(df.extra)}"
            )
        for key in ("train", "valid", "test"):
            list_path = getattr(df, key)
            if list_path is None or (key == "valid" and list_path == df.test):
                continue  # valid = test: the list detforge writes for Darknet, read once as test
            if os.path.isdir(list_path):  # a folder instead of a list: its images
                src.add(list_images([list_path]), key, list_path, None, None)
                continue
            if not os.path.isfile(list_path):
                f, line = df.where(key)
                raise DetforgeError(
                    f"{key} list not found: {list_path} (relative paths are resolved against "
                    "the .data file's folder)" + missing_hint(list_path),
                    path=f,
                    line=line,
                )
            got, lines, rel = read_image_list_entries(list_path, path_map=path_map)
            src.add(got, key, list_path, lines, rel)
        if df.names is not None:
            if not os.path.isfile(df.names):
                f, line = df.where("names")
                raise DetforgeError(
                    f"names file not found: {df.names}" + missing_hint(df.names),
                    path=f,
                    line=line,
                )
            src.names = read_names(df.names)
        elif df.classes is not None:
            src.names = [str(i) for i in range(df.classes)]
            meta["notes"].append(
                f"{source}: no 'names' key; classes are called 0..{df.classes - 1}"
            )
        if df.classes is not None and src.names is not None and df.classes != len(src.names):
            meta["notes"].append(
                f"{source}: classes = {df.classes} but the names file has {len(src.names)} names"
            )
    elif source.is_file():
        got, lines, rel = read_image_list_entries(source, path_map=path_map)
        src.add(got, split_from_list_name(source), str(source), lines, rel)
        src.roots = darknet_roots(source.parent, None)
        names_file = _find_names(source.parent)
        if names_file is not None:
            src.names = read_names(names_file)
    else:
        raise DetforgeError(
            "dataset not found: give a .data file, an image list or a folder of images"
            + missing_hint(str(source)),
            path=source,
        )
    return src


def find_elsewhere(src: Sources, missing: list[int]) -> list[int]:
    """Darknet's convention for relative list entries: look for each missing image, named by a
    relative path, under :attr:`Sources.roots` instead of its list's folder. The first root
    that holds the first such image is used for all of them; the paths of those found are
    replaced in ``src.paths`` (a note records it). Returns the indices replaced."""
    rel = [i for i in missing if src.list_dirs[i]]
    if not rel:
        return []
    i0 = rel[0]
    tail0 = os.path.relpath(src.paths[i0], src.list_dirs[i0])
    root = next((r for r in src.roots if os.path.isfile(os.path.join(r, tail0))), None)
    if root is None:
        return []
    fixed = []
    for i in rel:
        alt = os.path.normpath(os.path.join(root, os.path.relpath(src.paths[i], src.list_dirs[i])))
        if os.path.isfile(alt):
            src.paths[i] = alt
            fixed.append(i)
    src.meta["notes"].append(
        f"{len(fixed)} relative list entries found under {root} (Darknet resolves them against "
        "the folder it runs from), not under their list's folder"
    )
    return fixed
