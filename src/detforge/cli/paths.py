"""Wrong paths that point at the fix: the nearest existing name for a typo, and the command
to run when a folder holds another dataset layout than the command expects.

Every command goes through these: :func:`explain` is applied by ``cli/main.py`` to each
:class:`~detforge.errors.DetforgeError` it prints, so any error naming a path that does not
exist says which existing file was probably meant, and names the argument the user typed
when the error is about a file read through it (:func:`reached_through`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

from detforge.errors import DetforgeError

LAYOUT_NAMES = {
    "voc": "Pascal VOC (Annotations/ with XML files)",
    "coco": "COCO (an instances JSON)",
    "ultralytics": "Ultralytics (images/, labels/ and a data YAML)",
    "tfrecord": "TFRecord (.record files)",
}
"""How a layout :func:`detforge.formats.detect.detect_format` names is described to a user."""


def nearest_path(path: str | os.PathLike[str]) -> str | None:
    """The existing path closest to a missing ``path``: the most similar entry of the
    deepest existing folder above it, with the rest of ``path`` appended when that exists
    too (``data/obj.dat`` -> ``data/obj.data``; ``dta/obj.data`` -> ``data/obj.data``).
    ``None`` when ``path`` exists or nothing is similar enough."""
    p = Path(path)
    if p.exists() or str(path) == "":
        return None
    parts = p.parts
    for depth in range(len(parts) - 1, -1, -1):
        parent = Path(*parts[:depth]) if depth else Path(".")
        if not parent.is_dir():
            continue
        try:
            entries = sorted(os.listdir(parent))
        except OSError:
            return None
        close = difflib.get_close_matches(parts[depth], entries, n=1, cutoff=0.6)
        if not close:
            return None
        cand = Path(*parts[:depth], close[0], *parts[depth + 1 :])
        return str(cand) if cand.exists() else None
    return None


_MISSING_WORDS = ("not found", "does not exist", "no such", "missing")


def explain(exc: DetforgeError, given: Sequence[str] = (), named: Sequence[str] = ()) -> str:
    """The one-line message the CLI prints for ``exc``: a missing path gets ``did you mean
    'x'?``; an error about a file reached through the one dataset argument ``given`` (a list
    or names file a ``.data`` file names, an image a list names, its label file) says which
    argument it came from: ``(reading data/obj.data)``.

    That suffix is left off whenever the file was not reached through the argument
    (:func:`reached_through`): the error names (a file in) an argument itself or a path an
    option ``named`` (``--weights W``, ``--out DIR``, ``-o FILE``: the error names what the
    user typed, or a folder on its way); the file is an output in the default results folder
    ``runs/``; or the argument is a model or network ``.cfg``, which names no other files
    (a ``.cfg`` found beside a ``.weights`` is found by its name, and ``best.onnx`` beside
    ``best.pt`` is an output).
    """
    text = str(exc)
    if exc.path is None:
        return text
    missing = any(w in exc.message.lower() for w in _MISSING_WORDS)
    near = nearest_path(exc.path) if missing else None
    if near is not None:
        return f"{text} (did you mean {near!r}?)"
    via = reached_through(exc.path, given, named)
    return f"{text} (reading {via})" if via is not None else text


def reached_through(path: str, given: Sequence[str], named: Sequence[str] = ()) -> str | None:
    """The one argument of ``given`` that ``path``, named in an error, was read through;
    ``None`` when it may not have been (see :func:`explain`): ``path`` is, is inside or
    holds an argument, an option's path ``named`` or the default results folder; or not
    exactly one argument exists; or that one is a model or a ``.cfg`` (:func:`model_kind`)."""
    from detforge.cli.common import model_kind
    from detforge.utils.outputs import RUNS

    typed = [p for p in (*given, *named) if p]
    if any(_related(path, p) for p in (*typed, os.fspath(RUNS))):
        return None
    inputs = [g for g in given if g and os.path.exists(g)]
    if len(inputs) != 1 or model_kind(inputs[0]) != "data":
        return None
    return inputs[0]


def _related(path: str, other: str) -> bool:
    """Whether ``path`` is ``other``, lies inside it, or is a folder above it."""
    a, b = Path(os.path.abspath(path)), Path(os.path.abspath(other))
    return a == b or b in a.parents or a in b.parents


def layout_hint(source: str | os.PathLike[str], command: str) -> str | None:
    """When ``source``, given where images with Darknet labels are expected, is (or lies
    inside) a dataset of another layout: one sentence saying so and the command to run."""
    from detforge.formats.detect import detect_format

    p = Path(source)
    if not p.is_dir():
        return None
    for folder in (p, p.parent, p.parent.parent):
        try:
            fmt = detect_format(folder)
        except (DetforgeError, OSError):
            continue
        if fmt == "darknet":
            continue
        kind = LAYOUT_NAMES.get(fmt, fmt)
        if command in ("info", "stats", "check", "show") and folder != p:
            return (f"this folder is part of a {kind} dataset; give the dataset itself: "
                    f"detforge {command} {folder}")  # fmt: skip
        where = "is" if folder == p else f"is part of ({folder})"
        return (f"this folder {where} a {kind} dataset, not images with Darknet .txt labels; "
                f"convert it first: detforge convert {folder} OUT --to darknet")  # fmt: skip
    return None


def refuse_other_layout(source: str | os.PathLike[str], num_boxes: int, command: str) -> None:
    """:class:`DetforgeError` with :func:`layout_hint`'s advice when ``source``, read as
    images with Darknet labels, gave no boxes at all and looks like another layout."""
    if num_boxes == 0:
        hint = layout_hint(source, command)
        if hint is not None:
            raise DetforgeError(hint, path=source)
