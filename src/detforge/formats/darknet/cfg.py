"""Rewrite a Darknet ``.cfg`` for a new number of classes, editing lines in place.

The usual rule (AlexeyAB/darknet's README, "how to train on your own objects"):

* ``classes=N`` in every ``[yolo]`` / ``[Gaussian_yolo]`` / ``[region]`` section;
* ``filters=(N + 5) * masks`` in the last ``[convolutional]`` before each ``[yolo]``, where
  ``masks`` is the number of ``mask=`` indices (``num`` when there is no mask);
  ``(N + 9) * masks`` before ``[Gaussian_yolo]``, ``(N + 5) * num`` before ``[region]``;
* ``max_batches = max(2000 * N, 6000, train_images)`` and ``steps`` at 80% and 90% of it.

Every other byte of the file -- comments, order, spacing -- is kept. Pure functions:
:func:`rewrite_cfg_text` returns the new text and a list of human-readable changes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.utils.io import atomic_open

_SECTION = re.compile(r"^\s*\[([^\]]+)\]")
_KEY = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)([^#;\r\n]*?)(\s*(?:[#;].*)?)$")
_HEADS = {"yolo": 5, "gaussian_yolo": 9, "region": 5}


@dataclass(frozen=True)
class CfgChange:
    """One edited line: 1-based ``line``, ``section`` name, ``key``, old and new value."""

    line: int
    section: str
    key: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"line {self.line} [{self.section}] {self.key}: {self.old} -> {self.new}"


def default_max_batches(classes: int, train_images: int = 0) -> int:
    """``max(2000 * classes, 6000, train_images)``."""
    return max(2000 * classes, 6000, train_images)


def _sections(lines: list[str]) -> list[tuple[str, int, int]]:
    """``(name, first_line_index, end_index)`` of every section (header line included)."""
    heads = [
        (m.group(1).strip().lower(), i) for i, ln in enumerate(lines) if (m := _SECTION.match(ln))
    ]
    return [
        (name, start, heads[k + 1][1] if k + 1 < len(heads) else len(lines))
        for k, (name, start) in enumerate(heads)
    ]


def _find_key(lines: list[str], start: int, end: int, key: str) -> tuple[int, re.Match[str]] | None:
    for i in range(start + 1, end):
        m = _KEY.match(lines[i])
        if m and m.group(2).lower() == key:
            return i, m
    return None


def _set(lines: list[str], idx: int, m: re.Match[str], value: str) -> None:
    eol = "\r\n" if lines[idx].endswith("\r\n") else ("\n" if lines[idx].endswith("\n") else "")
    lines[idx] = (
        f"{m.group(1)}{m.group(2)}{m.group(3)}{value}{m.group(5).rstrip(chr(13) + chr(10))}{eol}"
    )


def rewrite_cfg_text(
    text: str,
    *,
    classes: int,
    max_batches: int | None = None,
    train_images: int = 0,
    path: str | None = None,
) -> tuple[str, list[CfgChange]]:
    """The cfg ``text`` rewritten for ``classes`` classes; returns ``(new_text, changes)``.

    ``max_batches`` defaults to :func:`default_max_batches`. Raises :class:`DetforgeError`
    when the file has no detection head or a head has no convolution before it.
    """
    if classes < 1:
        raise DetforgeError(f"--classes must be at least 1, got {classes}")
    lines = text.splitlines(keepends=True)
    sections = _sections(lines)
    changes: list[CfgChange] = []

    def change(idx: int, m: re.Match[str], section: str, value: str) -> None:
        old = m.group(4).strip()
        if old != value:
            changes.append(CfgChange(idx + 1, section, m.group(2), old, value))
            _set(lines, idx, m, value)

    heads = 0
    for k, (name, start, end) in enumerate(sections):
        if name not in _HEADS:
            continue
        heads += 1
        found = _find_key(lines, start, end, "classes")
        if found is None:
            raise DetforgeError(f"[{name}] section has no classes= line", path=path, line=start + 1)
        change(found[0], found[1], name, str(classes))
        mask = _find_key(lines, start, end, "mask")
        num = _find_key(lines, start, end, "num")
        if name != "region" and mask is not None:
            count = len([v for v in mask[1].group(4).split(",") if v.strip()])
        elif num is not None:
            count = int(num[1].group(4).strip())
        else:
            raise DetforgeError(
                f"[{name}] section has neither mask= nor num=", path=path, line=start + 1
            )
        conv = next(
            ((n, s, e) for n, s, e in reversed(sections[:k]) if n in ("convolutional", "conv")),
            None,
        )
        if conv is None:
            raise DetforgeError(f"no [convolutional] before [{name}]", path=path, line=start + 1)
        filt = _find_key(lines, conv[1], conv[2], "filters")
        if filt is None:
            raise DetforgeError(
                "[convolutional] before a head has no filters=", path=path, line=conv[1] + 1
            )
        change(filt[0], filt[1], "convolutional", str((classes + _HEADS[name]) * count))
    if not heads:
        raise DetforgeError(
            "no [yolo], [Gaussian_yolo] or [region] section: not a detector cfg", path=path
        )
    net = next(((s, e) for n, s, e in sections if n in ("net", "network")), None)
    if net is not None:
        mb = max_batches if max_batches is not None else default_max_batches(classes, train_images)
        found = _find_key(lines, net[0], net[1], "max_batches")
        if found is not None:
            change(found[0], found[1], "net", str(mb))
        steps = _find_key(lines, net[0], net[1], "steps")
        if steps is not None:
            change(steps[0], steps[1], "net", f"{int(mb * 0.8)},{int(mb * 0.9)}")
    return "".join(lines), changes


def rewrite_cfg(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    classes: int,
    max_batches: int | None = None,
    train_images: int = 0,
) -> list[CfgChange]:
    """Read ``src``, write the rewritten cfg to ``dst`` atomically; returns the changes.

    ``src`` is never modified; ``dst`` equal to ``src`` is refused.
    """
    s, d = Path(src), Path(dst)
    if not s.is_file():
        raise DetforgeError("cfg file not found", path=s)
    if d.exists() and d.resolve() == s.resolve():
        raise DetforgeError(
            "output must differ from the input cfg (detforge never edits sources)", path=d
        )
    with open(s, encoding="utf-8", newline="") as f:
        text = f.read()
    new, changes = rewrite_cfg_text(
        text, classes=classes, max_batches=max_batches, train_images=train_images, path=str(s)
    )
    with atomic_open(d, "w", newline="") as f:
        f.write(new)
    return changes
