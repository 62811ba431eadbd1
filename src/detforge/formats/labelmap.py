"""TF Object Detection API label maps (``label_map.pbtxt``), read, written and checked.

A label map is text-format protobuf::

    item {
      id: 1            # 1-based; 0 is reserved for the background class
      name: 'raccoon'
      display_name: 'Raccoon'   # optional
    }

detforge class ``k`` (0-based) is label-map id ``k + 1``. The API decodes a record's
``image/object/class/text`` through the label map, so a label map whose names differ from the
records' names (the guide's NaN loss) is an error detforge reports before training, not after.

:func:`read_label_map` also reads a plain class list (a Darknet ``.names`` file): one name a
line, blank lines skipped, the ``k``-th name (1-based) is id ``k``, as the API numbers classes.
A file is a text-format label map when its first line that is not blank or a ``#`` comment
starts with ``item``; anything else is read as a class list, and a line that looks like
another format (YAML, JSON, a text-format fragment, numbered ids, a TFLite background entry)
is refused with its line rather than taken for a name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from detforge.errors import DetforgeError, clip
from detforge.formats.tfrecord.textproto import parse, quote
from detforge.utils.io import atomic_write_text


def find_label_map(folder: Path) -> str | None:
    """``label_map.pbtxt`` / ``labels.pbtxt`` / the only ``*.pbtxt`` in ``folder`` (the label
    map of records or of a dataset kept there), else ``None``."""
    for name in ("label_map.pbtxt", "labels.pbtxt", "label_map.pbtx"):
        if (folder / name).is_file():
            return str(folder / name)
    found = sorted(folder.glob("*.pbtxt"))
    return str(found[0]) if len(found) == 1 else None


def parse_label_map(text: str, *, path: str | None = None) -> dict[int, str]:
    """``{id: name}`` from label-map text; ids must be positive integers and names distinct
    (:func:`~detforge.formats.darknet.files.refuse_duplicate_names`: TF looks classes up by
    name, so two ids of one name are one class), each used once."""
    from detforge.formats.darknet.files import refuse_duplicate_names  # not at the top: a cycle

    out: dict[int, str] = {}
    lines: list[int | None] = []
    for node in parse(text, path=path):
        if node.name != "item" or not node.is_message:
            raise DetforgeError(
                f"expected 'item {{ ... }}' in a label map, found {node.name!r}",
                path=path,
                line=node.line,
            )
        ids = node.find("id")
        names = node.find("name") or node.find("display_name")
        if not ids or not names:
            raise DetforgeError(
                "label map item needs both 'id' and 'name'", path=path, line=node.line
            )
        try:
            item_id = int(str(ids[0].value))
        except ValueError:
            raise DetforgeError(
                f"label map id {ids[0].value!r} is not an integer", path=path, line=ids[0].line
            ) from None
        if item_id < 1:
            raise DetforgeError(
                f"label map id {item_id} is invalid: ids start at 1 (0 is the background)",
                path=path,
                line=ids[0].line,
            )
        if item_id in out:
            raise DetforgeError(f"label map id {item_id} is used twice", path=path, line=node.line)
        out[item_id] = str(names[0].value)
        lines.append(names[0].line)
    if not out:
        raise DetforgeError("label map has no items", path=path)
    refuse_duplicate_names(list(out.values()), lines, path=path)
    return out


LABEL_MAP_FORMATS = (
    "a TF label map (item { id: 1 name: 'cat' }) or a class list, one name a line (the k-th "
    "name is id k)"
)
"""What :func:`read_label_map` reads, in the words of its messages and of ``--help``."""

_TEXTPROTO = re.compile(r"item\s*[:{<]")
_NUMBERED = re.compile(r"\d+\s+\S")
_BACKGROUND = ("???", "background", "__background__")


def _foreign(line: str) -> str:
    """What a class-list line looks like when it is no class name (``""`` when it is one)."""
    if line.startswith("#"):
        return "a comment"
    if line.startswith("- ") or line == "-":
        return "a YAML list item"
    if line[0] in "'\"" or line.endswith(","):
        return "a quoted or comma-separated JSON/YAML entry"
    if any(c in line for c in "{}[]<>"):
        return "JSON, YAML or a text-format label map"
    if line.endswith(":") or ": " in line:
        return "a YAML or text-format 'key: value' line"
    return ""


def _class_list(lines: list[str], path: str) -> dict[int, str]:
    """``{k: name}`` from one name a line (the ``k``-th name is id ``k``); see the module."""
    from detforge.formats.darknet.files import refuse_duplicate_names  # not at the top: a cycle

    names: list[str] = []
    numbers: list[int | None] = []
    filled = [raw.strip() for raw in lines if raw.strip()]
    if filled and all(line.startswith("#") for line in filled):
        raise DetforgeError(
            f"label map has no class names, only comment lines; expected {LABEL_MAP_FORMATS}",
            path=path,
        )
    for n, raw in enumerate(lines, start=1):
        name = raw.strip()
        if not name:
            continue
        kind = _foreign(name)
        if not names and name.lower() in _BACKGROUND:
            kind = "a TFLite background entry (id 0)"
        if kind:
            raise DetforgeError(
                f"{clip(name)!r} is not a class name (it looks like {kind}); expected "
                f"{LABEL_MAP_FORMATS}",
                path=path,
                line=n,
            )
        names.append(name)
        numbers.append(n)
    if not names:
        raise DetforgeError(
            f"label map has no class names; expected {LABEL_MAP_FORMATS}", path=path
        )
    if all(_NUMBERED.match(name) for name in names):
        raise DetforgeError(
            f"{clip(names[0])!r} starts with a number: a numbered list is not read (its ids could "
            f"start at 0 or 1); expected {LABEL_MAP_FORMATS}",
            path=path,
            line=numbers[0],
        )
    refuse_duplicate_names(names, numbers, path=path)
    return {k: name for k, name in enumerate(names, start=1)}


def read_label_map(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read a label map file into ``{id: name}`` (ids 1-based, detforge class ``id - 1``):
    a TF ``label_map.pbtxt``, or a class list with one name a line whose ``k``-th name is id
    ``k`` (the module docstring says how the two are told apart). Anything else is a one-line
    :class:`DetforgeError` naming the file and line."""
    from detforge.utils.textfile import read_text_lines

    p = str(path)
    lines = read_text_lines(path, "label map")
    meaningful = (ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#"))
    if _TEXTPROTO.match(" ".join(next(meaningful, "") for _ in range(2))):
        return parse_label_map("\n".join(lines), path=p)
    return _class_list(lines, p)


def label_map_names(mapping: dict[int, str], *, path: str | None = None) -> list[str]:
    """Class names in detforge order (id 1 -> class 0); ids must be ``1..K`` without gaps."""
    ids = sorted(mapping)
    if ids != list(range(1, len(ids) + 1)):
        missing = sorted(set(range(1, max(ids) + 1)) - set(ids))
        raise DetforgeError(
            f"label map ids must be 1..{len(ids)} without gaps; missing {missing[:10]}", path=path
        )
    return [mapping[i] for i in ids]


def format_label_map(names: Sequence[str]) -> str:
    """Label-map text for ``names`` (class ``k`` -> id ``k + 1``)."""
    items = [f"item {{\n  id: {k + 1}\n  name: {quote(n)}\n}}\n" for k, n in enumerate(names)]
    return "".join(items)


def write_label_map(path: str | os.PathLike[str], names: Sequence[str]) -> Path:
    """Write ``label_map.pbtxt`` for ``names`` atomically; returns the path."""
    atomic_write_text(path, format_label_map(names))
    return Path(path)


def label_map_problems(mapping: dict[int, str], names: Sequence[str]) -> list[str]:
    """Differences between a label map and dataset class names (empty when they agree).

    Each problem is one sentence naming the id and both names.
    """
    problems = []
    for k, name in enumerate(names):
        got = mapping.get(k + 1)
        if got is None:
            problems.append(f"class {clip(name)!r} needs id {k + 1}, which the label map lacks")
        elif got != name:
            problems.append(
                f"id {k + 1} is {clip(got)!r} in the label map but {clip(name)!r} in the data"
            )
    for item_id in sorted(set(mapping) - set(range(1, len(names) + 1))):
        problems.append(
            f"label map id {item_id} ({clip(mapping[item_id])!r}) is not a dataset class"
        )
    for k, name in enumerate(names):
        if name != name.strip() or " " in name:
            problems.append(
                f"class {k} name {clip(name)!r} contains spaces, which some TF tools mishandle"
            )
    return problems


def check_label_map(
    path: str | os.PathLike[str], names: Sequence[str], *, allow_spaces: bool = True
) -> dict[int, str]:
    """Read ``path`` and raise :class:`DetforgeError` listing every mismatch with ``names``."""
    mapping = read_label_map(path)
    problems = [
        p for p in label_map_problems(mapping, names) if allow_spaces is False or "spaces" not in p
    ]
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise DetforgeError(
            f"label map does not match the class names ({shown}); TF would train on "
            "mismatched classes (NaN loss). Fix the label map, or omit --label-map to write "
            "one from the names",
            path=path,
        )
    return mapping
