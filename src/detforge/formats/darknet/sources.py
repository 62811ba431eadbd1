"""What a Darknet dataset names: the one resolver of a ``.data`` file, an image list or a folder.

Every command that is given such a path goes through :func:`resolve_sources`: the reader
(:func:`detforge.formats.darknet.read_darknet`, and so ``train``/``val``/``convert``/``info``),
the checker (:mod:`detforge.check.darknet`) and prediction/evaluation
(:func:`detforge.predict.sources.open_source`, ``detforge eval``/``map``). The rules:

* A ``.data`` file's keys are resolved by :func:`~detforge.formats.darknet.files.read_data_file`
  (against the ``.data`` file's folder, else the folder Darknet runs from, after ``path_map``).
* ``train``/``valid``/``test`` may name a list file or a **folder**: a folder stands for its
  images (recursively, sorted), as in an Ultralytics YAML. (Darknet itself needs a list; a note
  says so and ``detforge lists`` writes one.)
* List entries (CRLF, BOM, blank and ``#`` lines, ``\\`` separators all fine) resolve against the
  list's folder. Relative entries that are not there are looked up under the folders Darknet
  may have been run from (:meth:`Sources.relocate`, called by every consumer after its stat
  pass, so the reader, the checker and prediction load the same files).
* A folder source: its images; the split comes from a folder named like a split among the
  first two levels (``train/x.jpg``, ``images/val/x.jpg``). A list source: the split comes from
  the list's file name (``val.txt`` -> ``valid``).
* Class names: the ``names`` key; for a list or folder a ``*.names`` file (else
  ``classes.txt``) beside it. A TF label map beside the dataset is found too
  (:func:`~detforge.formats.labelmap.find_label_map`).
* The same list file under two keys is read for both splits, and reported (``same_list``,
  problem ``split-overlap``).

Problems (a missing list or names file, an unreadable list, an unknown key, a reused list)
either raise :class:`DetforgeError` at once (``strict=True``, what readers want) or are
collected as :class:`Problem` records whose codes are ``detforge check`` finding codes
(``strict=False``). A source that does not exist, or a ``.data`` file that cannot be parsed,
always raises.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

from detforge.data.dataset import SPLITS, canonical_split
from detforge.data.lists import list_images
from detforge.errors import DetforgeError, clip
from detforge.formats.darknet.files import (
    DataFile,
    PathMap,
    darknet_roots,
    missing_hint,
    read_data_file,
    read_image_list_entries,
    read_names,
)
from detforge.formats.labelmap import find_label_map
from detforge.utils.paths import normalize_path

DATA_SPLITS = ("train", "valid", "test")
"""The ``.data`` keys that name images, in order."""


def split_from_list_name(path: str | os.PathLike[str]) -> str:
    """Guess a split from a list file name: ``train.txt`` -> ``train``, ``val_10.txt`` ->
    ``valid``, anything else -> ``""``."""
    stem = Path(path).stem.lower()
    for token in [stem, *re.split(r"[_\-. ]", stem)]:
        s = canonical_split(token)
        if s in SPLITS:
            return s
    return ""


def find_names(folder: Path) -> str | None:
    """A ``*.names`` file (the first by name), else ``classes.txt``, in ``folder``."""
    found = sorted(folder.glob("*.names"))
    if found:
        return str(found[0])
    classes = folder / "classes.txt"
    return str(classes) if classes.is_file() else None


@dataclass(frozen=True)
class Problem:
    """Something wrong with what a source names; ``code`` is a ``detforge check`` finding code
    (``list-missing``, ``names-missing``, ``read-error``, ``data-unknown-key``,
    ``split-overlap``, ``list-line``). ``fatal`` problems raise in strict mode; the others are
    also in :attr:`Sources.notes`."""

    code: str
    message: str
    path: str | None = None
    line: int | None = None
    fatal: bool = True


@dataclass(eq=False)
class Sources:
    """The images a dataset names, before anything is read from them (one row per list entry)."""

    source: Path
    paths: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    origins: list[tuple[str, int | None]] = field(default_factory=list)
    """``(file, line)`` naming each image (line ``None`` for images found in a folder)."""
    list_dirs: list[str] = field(default_factory=list)
    """Per image: the folder of the list that named it by a *relative* path, else ``""``."""
    lists: dict[str, str] = field(default_factory=dict)
    """Split -> the list file (or folder) read for it."""
    same_list: dict[str, str] = field(default_factory=dict)
    """Split -> the earlier split whose list file it names again (``valid = train.txt``)."""
    data_file: DataFile | None = None
    names_path: str | None = None
    declared_classes: int | None = None
    """``classes=`` of the ``.data`` file."""
    declared_at: tuple[str, int | None] | None = None
    label_map: str | None = None
    roots: list[Path] = field(default_factory=list)
    """Where Darknet may have been run from, tried for relative entries not found."""
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    strict: bool = True

    def _add(
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

    def _problem(self, p: Problem) -> None:
        if self.strict and p.fatal:
            raise DetforgeError(p.message, path=p.path, line=p.line)
        self.problems.append(p)

    def relocate(self, missing: Sequence[int]) -> list[int]:
        """Darknet's convention for relative list entries: look for each missing image (indices
        into :attr:`paths`), named by a relative path, under :attr:`roots` instead of its list's
        folder. The first root that holds the first such image is used for all of them; the
        paths of those found are replaced in :attr:`paths` (a note records it). Returns the
        indices replaced."""
        rel = [i for i in missing if self.list_dirs[i]]
        if not rel:
            return []
        i0 = rel[0]
        tail0 = os.path.relpath(self.paths[i0], self.list_dirs[i0])
        root = next((r for r in self.roots if os.path.isfile(os.path.join(r, tail0))), None)
        if root is None:
            return []
        fixed = []
        for i in rel:
            tail = os.path.relpath(self.paths[i], self.list_dirs[i])
            alt = normalize_path(os.path.join(root, tail))
            if os.path.isfile(alt):
                self.paths[i] = alt
                fixed.append(i)
        self.notes.append(
            f"{len(fixed)} relative list entries found under {root} (Darknet resolves them "
            "against the folder it runs from), not under their list's folder"
        )
        return fixed

    def relocate_missing(self) -> None:
        """:meth:`relocate` every image named by a relative list entry that does not exist (for
        consumers without a stat pass of their own; only relative entries are stat-ed)."""
        from detforge.utils.filestat import stat_many

        rel = [i for i, d in enumerate(self.list_dirs) if d]
        if not rel:
            return
        size, _ = stat_many([self.paths[i] for i in rel])
        self.relocate([i for i, s in zip(rel, size.tolist(), strict=True) if s < 0])


def resolve_sources(
    source: str | os.PathLike[str],
    *,
    path_map: PathMap = (),
    strict: bool = True,
    splits: Sequence[str] | None = None,
) -> Sources:
    """Resolve ``source`` (see the module docstring) into :class:`Sources`.

    ``splits``: only these ``.data`` keys (``"valid"``, ...; for evaluating one split); a key
    the ``.data`` file lacks is a :class:`DetforgeError`. Ignored for lists and folders.
    """
    src = Path(source)
    out = Sources(source=src, strict=strict)
    if src.is_dir():
        found = list_images([src])
        out._add(found, "", str(src), None, None)
        for i, p in enumerate(found):
            parts = os.path.relpath(p, src).replace("\\", "/").split("/")[:-1][:2]
            named = [canonical_split(d) for d in parts]
            out.splits[i] = next((s for s in named if s in SPLITS), "")
        out.names_path = find_names(src)
    elif src.suffix.lower() == ".data":
        _from_data_file(out, src, path_map, splits)
    elif src.is_file():
        _read_list(out, str(src), split_from_list_name(src), path_map)
        out.roots = darknet_roots(src.parent, None)
        out.names_path = find_names(src.parent)
    else:
        raise DetforgeError(
            "dataset not found: give a .data file, an image list or a folder of images"
            + missing_hint(str(src)),
            path=src,
        )
    folders = [src if src.is_dir() else src.parent]
    if out.names_path is not None:
        folders.append(Path(out.names_path).parent)
    for folder in dict.fromkeys(folders):
        out.label_map = out.label_map or find_label_map(folder)
    return out


def _read_list(out: Sources, list_path: str, split: str, path_map: PathMap) -> None:
    misreads: list[tuple[int, str, str]] | None = None if out.strict else []
    try:
        got, lines, rel = read_image_list_entries(list_path, path_map=path_map, misreads=misreads)
    except DetforgeError as exc:
        out._problem(Problem("read-error", exc.message, path=list_path, line=exc.line))
        return
    out.lists[split] = list_path
    out._add(got, split, list_path, lines, rel)
    for n, kind, raw in misreads or ():
        out._problem(Problem("list-line", _misread(kind, raw), list_path, n, fatal=False))


_MISREAD = {
    "blank": ("a blank line: Darknet reads it as an image path ({})", "it"),
    "comment": ("Darknet lists have no comments: it reads {} as an image path", "it"),
    "spaces": ("spaces around the path: Darknet reads it with them, {}", "them"),
    "bom": (
        "the list starts with a byte order mark: Darknet reads it as part of the first path, {}",
        "it",
    ),
}
"""``list-line`` messages per kind of :func:`darknet_misreads` line: what Darknet reads
(``{}``: the line) and what ``--fix`` leaves out."""


def _misread(kind: str, raw: str) -> str:
    """The ``list-line`` message of a list line of ``kind`` that reads ``raw``."""
    what, fixed = _MISREAD[kind]
    trimmed = "detforge trims them and " if kind == "spaces" else ""
    return (
        f"{what.format(clip(repr(raw)))}, cannot load it and trains a blank 10x10 image in its "
        f"place (it says 'Cannot load image' and adds it to bad.list); {trimmed}--fix writes "
        f"the list without {fixed}"
    )


def _from_data_file(out: Sources, src: Path, path_map: PathMap, only: Sequence[str] | None) -> None:
    df = read_data_file(src, path_map=path_map)
    out.data_file = df
    out.notes.extend(df.notes)
    out.roots = darknet_roots(src.parent, df.fallback_base)
    if df.classes is not None:
        out.declared_classes, out.declared_at = df.classes, (str(src), df.lines.get("classes"))
    for key, value in df.extra.items():
        msg = f"key {key!r} = {value!r} is not used by Darknet (typo?); it is ignored"
        out._problem(Problem("data-unknown-key", msg, str(src), df.lines.get(key), fatal=False))
    if df.extra:
        out.notes.append(f"{src}: keys Darknet does not use, kept: {', '.join(df.extra)}")
    keys = DATA_SPLITS if only is None else [canonical_split(k) for k in only]
    if only is None and all(getattr(df, k) is None for k in DATA_SPLITS):
        msg = "the .data file names no train=, valid= or test= list"
        out._problem(Problem("list-missing", msg, str(src), None))
    shared = valid_is_test(df) and "test" in keys
    for key in keys:
        if key not in DATA_SPLITS:
            raise DetforgeError(f"unknown split {key!r}; use train, valid or test")
        lp = getattr(df, key)
        if key == "valid" and shared:  # what detforge writes for Darknet: read once, as test
            out.notes.append(
                f"{src}:{df.lines.get('valid')}: valid = the test list (Darknet evaluates "
                "valid=); its images are read once, as the test split"
            )
            continue
        if lp is None:
            if only is not None:
                f, line = df.where(key)
                raise DetforgeError(
                    f"the .data file has no {key}= entry (no '{key}' list to use)",
                    path=f,
                    line=line,
                )
            continue
        _data_split(out, df, key, lp, path_map)
    if df.names is not None:
        if os.path.isfile(df.names):
            out.names_path = df.names
        else:
            msg = f"names file {df.names} does not exist" + missing_hint(df.names)
            out._problem(Problem("names-missing", msg, str(src), df.lines.get("names")))
    if out.strict and df.classes is not None and out.names_path is not None:
        check_class_count(df, out.names_path)


def check_class_count(df: DataFile, names_path: str) -> None:
    """``classes=`` must count the names (readers and ``darknet-cfg``; the checker reports
    ``classes-mismatch`` instead)."""
    count = len(read_names(names_path))
    if count != df.classes:
        f, line = df.where("classes")
        raise DetforgeError(
            f"classes = {df.classes} but the names file {names_path} has {count} names; "
            f"Darknet sizes the network by classes= and labels by the names -- set "
            f"classes = {count} or fix the names ('detforge check --fix' sets it)",
            path=f,
            line=line,
        )


def valid_is_test(df: DataFile) -> bool:
    """Whether ``valid=`` and ``test=`` name the same list: ``convert --to darknet`` writes that
    for a dataset with a test split and no valid one, as Darknet's ``detector map`` and
    training-time mAP read ``valid=`` only."""
    if df.valid is None or df.test is None:
        return False
    if df.valid == df.test:
        return True
    try:
        return os.path.samefile(df.valid, df.test)
    except OSError:
        return False


def _data_split(out: Sources, df: DataFile, key: str, lp: str, path_map: PathMap) -> None:
    """Add what the ``.data`` file's ``key`` (a list file or a folder) names."""
    src, line = str(df.path), df.lines.get(key)
    if os.path.isdir(lp):
        out.notes.append(
            f"{src}:{line}: {key} = {lp} is a folder: its images are used (Darknet itself "
            "needs a list file; 'detforge lists' writes one)"
        )
        out.lists[key] = lp
        out._add(list_images([lp]), key, lp, None, None)
        return
    if not os.path.isfile(lp):
        msg = (
            f"{key} list {lp} does not exist (relative paths are resolved against the .data "
            "file's folder)" + missing_hint(lp)
        )
        out._problem(Problem("list-missing", msg, src, line))
        return
    same = [k for k, v in out.lists.items() if os.path.samefile(v, lp)]
    if same:
        out.same_list[key] = same[0]
        msg = (
            f"{key} uses the same list as {same[0]} ({lp}): every {key} image is a {same[0]} "
            f"image, so evaluation measures memorisation -- make a separate {key} list "
            f"(detforge split; --fix drops the {key} split)"
        )
        out._problem(Problem("split-overlap", msg, src, line, fatal=False))
        out.notes.append(f"{src}:{line}: {key} names the same list as {same[0]} ({lp})")
    _read_list(out, lp, key, path_map)
