"""Where a Darknet-style dataset's images, lists and class names are, without reading labels.

:func:`gather_sources` turns a ``.data`` file, an image list, a folder of images (all three
through the one resolver, :func:`detforge.formats.darknet.sources.resolve_sources`, whose
problems become findings) or an Ultralytics dataset YAML (its labels are Darknet lines too;
through the reader's :func:`detforge.formats.ultralytics.resolve_yaml`, likewise) into list
entries ``(image, split, list file, line)``, the class names as written and findings
for anything missing. Nothing here raises for bad content; a source that does not exist is a
:class:`DetforgeError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from detforge.check.dataset import raw_name_lines
from detforge.check.files import read_text
from detforge.check.findings import Finding, finding
from detforge.formats.darknet import DataFile, PathMap
from detforge.formats.darknet.sources import resolve_sources
from detforge.formats.labelmap import find_label_map
from detforge.formats.ultralytics import resolve_yaml

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


def _from_yaml(src: Path, path_map: PathMap) -> Sources:
    """An Ultralytics dataset YAML, through the reader's resolver
    (:func:`~detforge.formats.ultralytics.resolve_yaml`) in its findings mode."""
    r = resolve_yaml(src, path_map=path_map, strict=False)
    out = Sources(
        entries=[
            (p, s, f, line) for p, s, (f, line) in zip(r.paths, r.splits, r.origins, strict=True)
        ],
        lists=r.lists,
        names=r.names,
        names_path=str(src),
        names_have_lines=False,
        label_map=find_label_map(src.parent),
        findings=[finding(q.code, q.message, path=q.path, line=q.line) for q in r.problems],
    )
    if r.names is None:
        out.findings.append(
            finding(
                "names-missing",
                "the YAML has no usable 'names' (a dict {0: name, ...} or a list)",
                path=str(src),
            )
        )
    nc = r.data.get("nc")
    if isinstance(nc, int):
        out.declared_classes, out.declared_at = nc, (str(src), None)
    return out


def gather_sources(source: str | os.PathLike[str], *, path_map: PathMap = ()) -> Sources:
    """Resolve ``source`` (see the module docstring) into :class:`Sources`."""
    src = Path(source)
    if src.suffix.lower() in (".yaml", ".yml") and src.is_file():
        out = _from_yaml(src, path_map)
    else:
        out = _from_resolver(src, path_map)
    if out.names is None and out.names_path is not None and out.names_have_lines:
        text, why = read_text(out.names_path)
        if text is None:
            out.findings.append(
                finding("read-error", f"cannot read the names: {why}", path=out.names_path)
            )
        elif raw_name_lines(text):
            out.names = raw_name_lines(text)
        else:  # 0 classes is no dataset: read as a missing file, not as every id out of range
            df = out.data_file
            at = (str(df.path), df.lines.get("names")) if df is not None else (None, None)
            msg = f"names file {out.names_path} has no class names"
            out.findings.append(
                finding("names-missing", msg, path=at[0] or out.names_path, line=at[1])
            )
    return out


def _from_resolver(src: Path, path_map: PathMap) -> Sources:
    """A ``.data`` file, a list or a folder, through the one resolver
    (:func:`~detforge.formats.darknet.sources.resolve_sources`) in its findings mode. A list
    named again by a later key (``split-overlap``) is checked once, under the first key."""
    r = resolve_sources(src, path_map=path_map, strict=False)
    r.relocate_missing()
    keep = [s not in r.same_list for s in r.splits]
    return Sources(
        entries=[
            (p, s, f, line)
            for p, s, (f, line), k in zip(r.paths, r.splits, r.origins, keep, strict=True)
            if k
        ],
        lists={k: v for k, v in r.lists.items() if k not in r.same_list},
        data_file=r.data_file,
        names_path=r.names_path,
        declared_classes=r.declared_classes,
        declared_at=r.declared_at,
        label_map=r.label_map,
        findings=[finding(q.code, q.message, path=q.path, line=q.line) for q in r.problems],
    )
