"""The one rule for output folders: detforge only replaces what it made itself.

OUT is first spelled as the folder it is (:func:`out_folder`: ``x/``, ``x/..``, ``.``), by every
command that takes an output folder, so that a name derived from it is never ``..`` or empty.
Every command that writes a dataset folder (``convert``, ``check --fix``, ``split``) goes
through :func:`output_dir`:

* OUT must be new, empty, or hold an earlier detforge output; that earlier output is only
  replaced with ``overwrite=True`` (``--overwrite``), and only the files it lists are removed:
  anything a person added to it stays.
* OUT may not be, lie inside or contain the source (a folder it walks, or its file), a folder
  of the images and label files it names, or the dataset folder holding such an ``images/``
  and its ``labels/`` folder: writing there could replace source files, or add a second copy
  to the dataset (see :func:`refuse_overlap`).
* While a command writes, :data:`MANIFEST` in OUT says ``"complete": false``; it is rewritten
  with ``"complete": true`` and the list of written files at the end. A ``kill -9`` therefore
  leaves OUT marked incomplete: :func:`refuse_incomplete` (called when a dataset is read) makes
  ``info``/``check``/``convert`` say so instead of loading a partial dataset, and the next run
  of a writer replaces the partial output (hidden temporary files included) without
  ``--overwrite``: everything in it that was not there before the interrupted run is ours.
* An error while writing (a bad source file found half way) removes what the run wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from detforge.errors import DetforgeError

MANIFEST = ".detforge-output.json"
"""The marker file detforge writes into every output folder it makes."""

_FORMAT = "detforge-output/1"


def out_folder(out: str | os.PathLike[str]) -> Path:
    """OUT spelled as the folder it names, so that its last part is that folder's own name.

    ``x/`` and ``x/.`` are ``x``; in a path with ``..`` (``x/..``, ``runs/a/../b``) everything
    up to the last ``..`` is resolved as the system resolves it (``os.path.realpath``: ``link/..``
    is the folder above the link's target), the rest kept as given; ``.`` is the current
    folder, made absolute. Any other OUT is kept as given (a relative one stays
    relative, a link is not replaced by its target), so messages show what was typed.

    An empty OUT (``--out ''``, often an unset shell variable) is a :class:`DetforgeError`,
    as is one holding a control character (a pasted line break would split every line that
    names the folder) and one the system cannot even look up (a name longer than it allows,
    a loop of links, a folder on the way that may not be read): every command then says so
    in one line, instead of one writing into the current folder, another into ``runs/`` and
    ``check --fix ''`` writing nothing at all.

    Every command that takes an output folder goes through it (:func:`output_dir`,
    :func:`prepare_output_dir`, :func:`detforge.utils.outputs.results_dir`): the numbered
    ``DIR-2`` of an existing folder and the folder written to then never come out as
    ``x/..-2``, a crash on an empty name, or a folder ``x`` made on the way to ``x/..``.
    """
    text = os.fspath(out)
    if text == "":
        raise DetforgeError(
            "OUT is an empty name (an unset shell variable?); give a folder ('.' for this one)"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in text):  # a pasted line break, a tab ...
        raise DetforgeError(
            f"OUT {text!r} holds a control character (a line break?); give a folder name "
            "without one"
        )
    p = Path(text)
    parts = p.parts
    if ".." in parts:
        last = len(parts) - parts[::-1].index("..")
        p = Path(os.path.realpath(Path(*parts[:last])), *parts[last:])
    elif not p.name:  # "." or "/"
        p = Path(os.path.realpath(p))
    try:
        os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        pass  # a new folder, or a file on the way: the writer says which
    except OSError as exc:  # too long a name, a loop of links, no permission
        raise DetforgeError(f"OUT cannot be used ({exc.strerror or exc})", path=text) from None
    return p


def _walk_files(root: Path) -> set[str]:
    """Relative POSIX paths of every file, symlink and folder under ``root`` (folders end
    in ``/``), so that a manifest also says which folders detforge made."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        for name in filenames:
            found.add(prefix + name)
        for name in list(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                found.add(prefix + name)  # a link to a folder: the link itself, not its tree
                dirnames.remove(name)
            else:
                found.add(prefix + name + "/")
    found.discard(MANIFEST)
    return {f for f in found if not f.startswith(_MANIFEST_TMP)}


_MANIFEST_TMP = f".{MANIFEST}."  # atomic_write_text's temporary names for the manifest


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a detforge output folder, or ``None`` when ``folder`` has none.

    Manifests are written atomically, so one that does not parse as this version's was not
    written by detforge: it is a :class:`DetforgeError` (never a licence to remove files).
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise DetforgeError(
            f"{MANIFEST} here is not a detforge output manifest detforge can read; this "
            "folder is left alone -- give a new folder",
            path=path,
        )
    return data


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    from detforge.utils.io import atomic_write_text

    atomic_write_text(folder / MANIFEST, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _owned_files(folder: Path, manifest: dict[str, Any]) -> set[str]:
    """The files of an earlier detforge output in ``folder`` that detforge may remove."""
    present = _walk_files(folder)
    if manifest.get("complete") is True:
        return present & set(_strings(manifest.get("files")))
    return present - set(_strings(manifest.get("kept")))


def _remove_files(folder: Path, rels: Iterable[str]) -> None:
    """Remove ``rels`` under ``folder``: files and links first, then the listed folders
    (``x/``) deepest first, each only when empty (a person's file inside keeps it)."""
    folders = []
    root = os.path.realpath(folder)
    for rel in rels:
        if ".." in Path(rel).parts or rel.startswith("/"):
            continue  # never outside OUT, whatever a manifest says
        parent = os.path.realpath(os.path.dirname(folder / rel.rstrip("/")))
        if parent != root and not parent.startswith(root + os.sep):
            continue  # a folder inside OUT was replaced by a link to somewhere else
        if rel.endswith("/"):
            folders.append(folder / rel)
            continue
        p = folder / rel
        if p.is_dir() and not p.is_symlink():
            folders.append(p)  # listed as a file but a folder now: only when empty
            continue
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            p.unlink()
    for d in sorted(folders, key=lambda q: len(q.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _dataset_roots(folders: set[Path]) -> set[Path]:
    """The dataset folders of ``folders`` (the folders of the images and label files a source
    names): where an image folder and the label folder Darknet or Ultralytics read for it meet
    (``ds`` of ``ds/images/train`` and ``ds/labels/train``: the rules of
    :func:`~detforge.formats.darknet.label_path_candidates`), when both are in ``folders``.
    A command that walks such a folder reads an OUT inside it as more of the dataset."""
    from detforge.formats.darknet import label_path_candidates

    roots: set[Path] = set()
    for f in folders:
        for cand in label_path_candidates(os.path.join(f, "x.jpg"))[1:]:
            labels = Path(os.path.dirname(cand))
            if labels != f and labels in folders:
                roots.add(Path(os.path.commonpath([f, labels])))
    return roots


def refuse_overlap(
    out: str | os.PathLike[str],
    read_folders: Iterable[str | os.PathLike[str]],
    *,
    file_folders: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """:class:`DetforgeError` when ``out`` overlaps what the source reads.

    ``read_folders``: the source itself (a folder it walks, or a file); ``file_folders``:
    folders of the individual images and label files the source names. ``out`` may not be,
    lie inside or contain any of them, nor a dataset folder holding an image folder and its
    label folder (:func:`_dataset_roots`): inside an image or dataset folder it would add
    files to the user's dataset, which a later run that walks it reads as more of the data.

    The folder that holds only a source *file* (a ``.data`` file, an image list, a COCO
    JSON) does not count: OUT beside ``obj.data`` is fine when it is not in an image or label
    folder nor in the folder holding ``images/`` and ``labels/`` (``data/obj.data`` with
    images and labels in ``data/obj/``: ``data/coco`` is allowed).

    Every folder is compared resolved (:meth:`~detforge.utils.paths.PathResolver.folder`):
    OUT or a source reached through a link to a folder, or spelled with ``..``, is caught
    too; the message names OUT as it was given.
    """
    from detforge.utils.paths import PathResolver

    real = PathResolver().folder  # links and `..` resolved: a link to the source is the source
    o = Path(real(out))
    read = {Path(real(f)) for f in read_folders}
    listed = {Path(real(f)) for f in file_folders}
    for f in sorted(read | listed | _dataset_roots(listed), reverse=True):  # deepest named
        if _inside(f, o) or _inside(o, f):
            raise DetforgeError(
                f"OUT overlaps a folder the source is read from ({f}); detforge never writes "
                "where its input lives. Choose a folder outside the dataset",
                path=out,
            )


def prepare_output_dir(
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    read_folders: Iterable[str | os.PathLike[str]] = (),
    file_folders: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Every check of :func:`output_dir` that needs no write (call it before slow work)."""
    o = out_folder(out)
    if o.is_symlink() and not o.exists():
        raise DetforgeError("OUT is a broken symbolic link", path=o)
    if o.exists() and not o.is_dir():
        raise DetforgeError("OUT is an existing file, not a folder; give a folder", path=o)
    refuse_overlap(o, read_folders, file_folders=file_folders)
    if not o.exists():
        return
    manifest = read_manifest(o)
    try:
        entries = [e for e in os.listdir(o) if e != MANIFEST and not e.startswith(_MANIFEST_TMP)]
    except OSError as e:
        raise DetforgeError(f"OUT cannot be listed ({e.strerror})", path=o) from None
    if manifest is None:
        if entries:
            raise DetforgeError(
                "OUT exists, is not empty and was not written by detforge; give a new or "
                "empty folder (detforge never deletes files it did not make)",
                path=o,
            )
        return
    if manifest.get("complete") is True and not overwrite:
        raise DetforgeError(
            "OUT holds an earlier detforge output; pass --overwrite to replace it (only the "
            "files detforge wrote there are removed)",
            path=o,
        )


@contextlib.contextmanager
def output_dir(
    out: str | os.PathLike[str],
    *,
    command: str,
    overwrite: bool = False,
    read_folders: Iterable[str | os.PathLike[str]] = (),
    file_folders: Iterable[str | os.PathLike[str]] = (),
    note: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Claim ``out`` for writing (see the module rules) and yield it, spelled as
    :func:`out_folder` spells it: write into the folder yielded, not ``out`` as given.

    On success the manifest lists every file written; on a :class:`DetforgeError` or other
    exception the files this run wrote are removed (and ``out`` itself when this run made it);
    a kill leaves ``out`` marked incomplete.
    """
    o = out_folder(out)
    prepare_output_dir(o, overwrite=overwrite, read_folders=read_folders, file_folders=file_folders)
    created = not o.exists()
    manifest = None if created else read_manifest(o)
    if manifest is not None:
        owned = _owned_files(o, manifest)
        if manifest.get("complete") is not True and note is not None:
            note(f"replacing an interrupted detforge output in {o}")
        _remove_files(o, owned)
    try:
        o.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a parent folder should be, no permission, ...
        raise DetforgeError(f"cannot create OUT ({exc.strerror or exc})", path=o) from None
    for leftover in o.glob(f"{_MANIFEST_TMP}*"):
        with contextlib.suppress(OSError):
            leftover.unlink()
    kept = sorted(_walk_files(o))
    _write_manifest(
        o,
        {
            "format": _FORMAT,
            "complete": False,
            "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "kept": kept,
        },
    )
    try:
        yield o
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise  # leave the incomplete marker: the next run cleans up
        _remove_files(o, _walk_files(o) - set(kept))
        if created:
            with contextlib.suppress(OSError):
                (o / MANIFEST).unlink()
                o.rmdir()
        else:
            with contextlib.suppress(OSError):
                (o / MANIFEST).unlink()
        raise
    files = sorted(_walk_files(o) - set(kept))
    _write_manifest(
        o,
        {
            "format": _FORMAT,
            "complete": True,
            "command": command,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": files,
        },
    )


@contextlib.contextmanager
def removed_on_error(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield ``folder``; when the block raises (an interrupt included), remove every file and
    folder under it that was not there before, then ``folder`` itself and the parent folders
    the block made, when empty. Nothing that existed before is removed (for outputs without a
    manifest, e.g. a report; call it after the checks that refuse a folder of other files,
    since it lists ``folder`` first)."""
    o = Path(folder)
    made = [d for d in (o, *o.absolute().parents) if not os.path.lexists(d)]
    before = _walk_files(o) if o.is_dir() else set()
    try:
        yield o
    except BaseException:
        if o.is_dir() and not o.is_symlink():
            _remove_files(o, _walk_files(o) - before)
        for d in made:  # deepest first
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def refuse_incomplete(source: str | os.PathLike[str]) -> None:
    """:class:`DetforgeError` when ``source`` lies in a detforge output marked incomplete.

    Looks at the source (a folder) and up to three folders above it, where a manifest of an
    output folder can be (``OUT/annotations/instances_train.json``, ``OUT/train/x.jpg``).
    """
    p = Path(os.path.abspath(source))
    candidates = [p] if p.is_dir() else []
    candidates += list(p.parents)[:3]
    for folder in candidates:
        try:
            m = read_manifest(folder)
        except DetforgeError:
            continue  # a file of that name detforge did not write: not an output of ours
        if m is not None and m.get("complete") is not True:
            raise DetforgeError(
                f"this is an incomplete detforge output (`{m.get('command', '?')}` was "
                "interrupted); run that command again to finish it",
                path=folder,
            )
