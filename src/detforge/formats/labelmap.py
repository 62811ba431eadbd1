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
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from detforge.errors import DetforgeError
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


def read_label_map(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read a ``label_map.pbtxt`` file into ``{id: name}``."""
    p = Path(path)
    if not p.is_file():
        raise DetforgeError("label map file not found", path=p)
    return parse_label_map(p.read_text(encoding="utf-8"), path=str(p))


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
            problems.append(f"class {name!r} needs id {k + 1}, which the label map lacks")
        elif got != name:
            problems.append(f"id {k + 1} is {got!r} in the label map but {name!r} in the data")
    for item_id in sorted(set(mapping) - set(range(1, len(names) + 1))):
        problems.append(f"label map id {item_id} ({mapping[item_id]!r}) is not a dataset class")
    for k, name in enumerate(names):
        if name != name.strip() or " " in name:
            problems.append(
                f"class {k} name {name!r} contains spaces, which some TF tools mishandle"
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
