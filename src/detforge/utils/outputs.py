"""Where a command's results go: the one rule every command follows (docs/cli.md).

* A command that writes results (``train``, ``predict``, ``show``, ``map``, ``eval``,
  ``stats``, ``report``) writes them into ONE folder: ``--out DIR`` when given, else
  ``runs/<command>/<name>`` (``<name>``: the dataset's or source's name, :func:`run_name`).
  A Darknet ``.data`` file's ``results=`` folder replaces ``runs`` for ``map`` and ``eval``:
  ``<results>/<command>``, so the two never write into each other's files.
* That folder is new: when it exists, the next free ``DIR-2``, ``DIR-3`` ... is used instead
  (:func:`next_run_dir`), unless ``--exist-ok`` says to write into it as it is.
* A file a person names (``--json FILE``, ``predict --save-json FILE``, ``export -o x.onnx``)
  is never replaced silently: an existing one is an error unless ``--exist-ok``
  (:func:`claim_file`).
* The command prints where its output went as its last line(s) (:func:`say_saved`).

Dataset folders (``convert``, ``check --fix``, ``split``) follow the stricter rule of the
dataset writers (:mod:`detforge.utils.outdir`: a manifest and ``--overwrite``), not this one.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.utils.io import WriteError, blocking_file
from detforge.utils.outdir import out_folder

RUNS = Path("runs")
"""Results of every command go under ``runs/<command>/`` by default."""


def next_run_dir(base: str | os.PathLike[str]) -> Path:
    """The first of ``base``, ``base-2``, ``base-3`` ... that does not exist yet (``base``
    spelled by :func:`~detforge.utils.outdir.out_folder`: ``x/..`` is numbered by the real
    name of the folder it is, ``.`` by the current folder's name)."""
    base = out_folder(base)
    if not base.exists():
        return base
    if not base.name:
        raise DetforgeError(
            "the root folder exists and cannot be numbered; give a new folder, or --exist-ok",
            path=base,
        )
    n = 2
    while True:
        cand = base.with_name(f"{base.name}-{n}")
        if not cand.exists():
            return cand
        n += 1


def run_name(source: str | os.PathLike[str] | None, default: str = "exp") -> str:
    """The name of a run from what it reads: ``obj`` for ``data/obj.data`` or
    ``best.pt``, a folder's own name for a folder (``photos/``, ``.`` and ``photos/x/..``
    included: :func:`~detforge.utils.outdir.out_folder`), ``default`` without a source.
    A ``DATA:split`` source keeps only the file's name."""
    text = os.fspath(source) if source is not None else ""
    if text.lower().rpartition(":")[0].endswith(".data"):
        text = text.rpartition(":")[0]
    text = text.rstrip("/\\")
    if not text:
        return default
    p = out_folder(text)
    name = p.stem if p.suffix else p.name
    return name if name not in ("", ".", "..") else default


def results_dir(
    command: str,
    *,
    out: str | os.PathLike[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    exist_ok: bool = False,
    base: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> Path:
    """The folder ``command`` writes into (see the module rule); not created here.

    ``out``: ``--out DIR``, spelled as :func:`~detforge.utils.outdir.out_folder` spells it
    (``x/..``, ``.``, ``x/``: the folder they are, numbered by its real name); ``source``: what
    names the run (:func:`run_name`; ``name`` instead when given); ``base``: a Darknet
    ``results=`` folder (then ``<base>/<command>``). Without ``exist_ok`` an existing folder is
    never reused: the next numbered one is returned.

    A file where the folder, or a folder above it, has to be (``runs`` a file, ``--out a/b``
    with ``a`` a file, ``results=`` naming a file) is a :class:`WriteError` naming that file
    and what to do, raised here, before anything is written.
    """
    if out is not None:
        folder = out_folder(out)
        if folder.exists() and not folder.is_dir():
            raise DetforgeError("--out is an existing file; --out names a folder", path=folder)
        fix = "give another --out"
    elif base is not None:
        folder = Path(base) / command
        fix = "correct results= in the .data file, or give --out DIR"
    else:
        folder = RUNS / command / (name or run_name(source))
        fix = "move that file away, or give --out DIR"
    folder = folder if exist_ok else next_run_dir(folder)
    blocker = blocking_file(folder)
    if blocker is not None:
        raise WriteError(
            f"is an existing file, not a folder, so the {command} results folder {folder} "
            f"cannot be made; {fix}",
            path=blocker,
        )
    return folder


def claim_file(path: str | os.PathLike[str], *, exist_ok: bool, option: str = "") -> Path:
    """``path`` (a file a person named) when it may be written: an existing file is an
    error unless ``exist_ok``; a folder, and a file where a folder above it should be, are
    always errors."""
    p = Path(path)
    what = f"{option} " if option else ""
    if p.is_dir():
        raise DetforgeError(f"{what}names a folder; give a file name", path=p)
    blocker = blocking_file(p.parent)
    if blocker is not None:
        raise DetforgeError(
            f"is an existing file, not a folder; {what or 'the output '}cannot go inside it",
            path=blocker,
        )
    if p.exists() and not exist_ok:
        raise DetforgeError(
            f"{what}would replace an existing file; pass --exist-ok to replace it, or give "
            "another name",
            path=p,
        )
    return p


def add_output_options(
    parser: argparse.ArgumentParser, command: str, *, out_help: str | None = None
) -> None:
    """``--out DIR`` and ``--exist-ok``, worded the same in every command."""
    parser.add_argument(
        "--out", metavar="DIR", default=None,
        help=out_help or f"folder for the results [runs/{command}/<name>, numbered if it exists]",
    )  # fmt: skip
    add_exist_ok_option(parser)


def add_exist_ok_option(parser: argparse.ArgumentParser, *, help: str | None = None) -> None:
    """``--exist-ok``: write into an existing output folder / replace a named file (``help``:
    the wording for a command without ``--out``)."""
    parser.add_argument(
        "--exist-ok", action="store_true",
        help=help or "write into an existing --out folder (and replace files named by options) "
        "instead of numbering a new folder",
    )  # fmt: skip


def say_saved(what: str, where: str | os.PathLike[str]) -> None:
    """The closing line of a command: where ``what`` went (stdout, so it can be piped)."""
    text = os.fspath(where)
    if Path(text).is_dir() and not text.endswith(("/", os.sep)):
        text += "/"
    print(f"{what}: {text}", flush=True)
