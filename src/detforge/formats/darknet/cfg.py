"""Rewrite a Darknet ``.cfg`` for a new number of classes, editing lines in place.

The usual rule (AlexeyAB/darknet's README, "how to train on your own objects"):

* ``classes=N`` in every ``[yolo]`` / ``[Gaussian_yolo]`` / ``[region]`` section;
* ``filters=(N + 5) * masks`` in the last ``[convolutional]`` before each ``[yolo]``, where
  ``masks`` is the number of ``mask=`` indices (``num`` when there is no mask);
  ``(N + 9) * masks`` before ``[Gaussian_yolo]``, ``(N + 5) * num`` before ``[region]``;
* ``max_batches = max(2000 * N, 6000, train_images)`` and ``steps`` at 80% and 90% of it;
* optionally a new input size (``width``/``height`` in ``[net]``), new ``anchors=`` in every
  head, and ``subdivisions`` by :func:`sensible_subdivisions`.

Every other byte of the file -- comments, order, spacing, bytes that are not UTF-8 -- is kept
(a leading UTF-8 byte order mark is dropped, as every detforge cfg reader ignores it). Pure
functions: :func:`rewrite_cfg_text` returns the new text and a list of human-readable changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.utils.io import atomic_open
from detforge.utils.textfile import require_file

_SECTION = re.compile(r"^\s*\[([^\]]+)\]")
_KEY = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)([^#;\r\n]*?)(\s*(?:[#;].*)?)$")
_COMMENTED = re.compile(r"^\s*[#;]\s*(batch|subdivisions)\s*=\s*(\d+)\s*$", re.IGNORECASE)
_HEADS = {"yolo": 5, "gaussian_yolo": 9, "region": 5}
_INT_MAX = 2**31 - 1  # Darknet reads these keys into a C int


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


def sensible_subdivisions(
    batch: int, subdivisions: int, old_wh: tuple[int, int], new_wh: tuple[int, int]
) -> int:
    """Subdivisions that keep a mini-batch (``batch / subdivisions`` images) at most as many
    pixels as the cfg's own ``subdivisions`` did at ``old_wh``: the smallest divisor of
    ``batch`` that is at least ``subdivisions * new_area / old_area`` (``batch`` at most)."""
    need = max(1.0, subdivisions * (new_wh[0] * new_wh[1]) / (old_wh[0] * old_wh[1]))
    for d in range(1, batch + 1):
        if batch % d == 0 and d >= need - 1e-9:
            return d
    return batch


def _int_value(
    lines: list[str],
    start: int,
    end: int,
    key: str,
    *,
    path: str | os.PathLike[str] | None,
    low: int,
    high: int = _INT_MAX,
) -> tuple[int, int] | None:
    """``(line_index, value)`` of an integer ``key=`` in a section, ``None`` when absent.

    Every whole number the rewrite reads goes through here: one that is not an integer, or is
    outside ``low..high``, is a :class:`DetforgeError` naming ``path`` and the key's line.
    """
    found = _find_key(lines, start, end, key)
    if found is None:
        return None
    raw = found[1].group(4).strip()
    try:
        value = int(raw)
    except ValueError:
        raise DetforgeError(
            f"{key}={raw[:40]!r} is not a whole number", path=path, line=found[0] + 1
        ) from None
    if not low <= value <= high:
        accepted = f"{low}..{high}" if high < _INT_MAX else f"at least {low}"
        raise DetforgeError(
            f"{key}={value} is out of range: detforge accepts {accepted}",
            path=path,
            line=found[0] + 1,
        )
    return found[0], value


def _net_wh(
    lines: list[str], net: tuple[int, int], path: str | os.PathLike[str] | None
) -> tuple[int, int]:
    """``(width, height)`` of the [net] section ``net`` (416 when absent), each in the range
    the network parser accepts (:data:`~detforge.models.darknet.cfgkeys.LIMITS`)."""
    from detforge.models.darknet.cfgkeys import LIMITS

    wh = []
    for key in ("width", "height"):
        low, high = LIMITS["net"][key]
        found = _int_value(lines, net[0], net[1], key, path=path, low=low, high=high)
        wh.append(found[1] if found else 416)
    return wh[0], wh[1]


def _commented_training(lines: list[str], start: int, end: int) -> dict[str, int]:
    """``# batch=64`` / ``# subdivisions=16`` lines of a [net] section (the "Training" values
    stock cfgs keep as comments while the "Testing" ones are active)."""
    out: dict[str, int] = {}
    for ln in lines[start + 1 : end]:
        m = _COMMENTED.match(ln)
        if m:
            out[m.group(1).lower()] = int(m.group(2))
    return out


def cfg_net_size(text: str, *, path: str | os.PathLike[str] | None = None) -> tuple[int, int]:
    """``(width, height)`` of the ``[net]`` section (Darknet's defaults 416 when absent)."""
    lines = text.splitlines(keepends=True)
    net = next(((s, e) for n, s, e in _sections(lines) if n in ("net", "network")), (0, 0))
    return _net_wh(lines, net, path)


def cfg_letter_box(text: str, *, path: str | os.PathLike[str] | None = None) -> bool:
    """Whether the ``[net]`` section says ``letter_box=1`` (Darknet's default 0)."""
    lines = text.splitlines(keepends=True)
    net = next(((s, e) for n, s, e in _sections(lines) if n in ("net", "network")), (0, 0))
    value = _int_value(lines, net[0], net[1], "letter_box", path=path, low=0)
    return bool(value and value[1])


def cfg_anchor_count(text: str, *, path: str | None = None) -> int:
    """The ``num=`` of the cfg's heads (how many anchors ``anchors=`` lists)."""
    lines = text.splitlines(keepends=True)
    nums = set()
    for name, start, end in _sections(lines):
        if name in _HEADS:
            num = _int_value(lines, start, end, "num", path=path, low=1)
            if num is None:
                raise DetforgeError(f"[{name}] section has no num=", path=path, line=start + 1)
            nums.add(num[1])
    if len(nums) != 1:
        raise DetforgeError(
            "the heads disagree on num= (or there is no head): cannot place new anchors", path=path
        )
    return nums.pop()


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
    size: tuple[int, int] | None = None,
    anchors: str | None = None,
    subdivisions: int | None = None,
    path: str | None = None,
) -> tuple[str, list[CfgChange]]:
    """The cfg ``text`` rewritten for ``classes`` classes; returns ``(new_text, changes)``.

    ``max_batches`` defaults to :func:`default_max_batches`. ``size`` ``(W, H)`` sets the
    input size; ``anchors`` (the ``anchors=`` value, e.g. ``"10,14, 23,27"``) replaces the
    anchors of every head. ``subdivisions`` is set when given, else by
    :func:`sensible_subdivisions` (a cfg left with its "Testing" ``batch=1`` gets its commented
    "Training" values, or ``batch=64 subdivisions=16``). Raises :class:`DetforgeError`
    when the file has no detection head or a head has no convolution before it.
    """
    if classes < 1:
        raise DetforgeError(f"--classes must be at least 1, got {classes}")
    if max_batches is not None and max_batches < 1:
        raise DetforgeError(f"--max-batches must be at least 1, got {max_batches}")
    lines = text.splitlines(keepends=True)
    sections = _sections(lines)
    changes: list[CfgChange] = []

    def change(idx: int, m: re.Match[str], section: str, value: str) -> None:
        old = m.group(4).strip()
        if old != value:  # (a non-UTF-8 byte read as a lone surrogate is shown as U+FFFD)
            shown = old.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            changes.append(CfgChange(idx + 1, section, m.group(2), shown, value))
            _set(lines, idx, m, value)

    heads = 0
    for k, (name, _, _) in enumerate(sections):
        if name in _HEADS:
            heads += 1
            _rewrite_head(lines, sections, k, classes, anchors, change, path)
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
        _net_size_and_batch(lines, net, size, subdivisions, change, path)
    elif size is not None or subdivisions is not None:
        raise DetforgeError("no [net] section to set the input size in", path=path)
    return "".join(lines), changes


def set_anchors_text(text: str, anchors: str, *, path: str | None = None) -> str:
    """``text`` with ``anchors=`` of every detection head set to ``anchors`` (e.g.
    ``"10,14, 23,27"``); nothing else changes, line numbers stay."""
    lines = text.splitlines(keepends=True)
    heads = [(n, s, e) for n, s, e in _sections(lines) if n in _HEADS]
    if not heads:
        raise DetforgeError(
            "no [yolo], [Gaussian_yolo] or [region] section: not a detector cfg", path=path
        )
    for name, start, end in heads:
        found = _find_key(lines, start, end, "anchors")
        if found is None:
            raise DetforgeError(f"[{name}] has no anchors= line", path=path, line=start + 1)
        _set(lines, found[0], found[1], anchors)
    return "".join(lines)


def _rewrite_head(
    lines: list[str],
    sections: list[tuple[str, int, int]],
    k: int,
    classes: int,
    anchors: str | None,
    change: Callable[[int, re.Match[str], str, str], None],
    path: str | None,
) -> None:
    """Set ``classes=`` (and ``anchors=`` when given) in the head ``sections[k]`` and the
    ``filters=`` of the last [convolutional] before it to ``(classes + extra) * count``,
    ``count`` being the head's ``mask=`` length (``num=`` for [region])."""
    name, start, end = sections[k]
    found = _find_key(lines, start, end, "classes")
    if found is None:
        raise DetforgeError(f"[{name}] section has no classes= line", path=path, line=start + 1)
    change(found[0], found[1], name, str(classes))
    if anchors is not None:
        anc = _find_key(lines, start, end, "anchors")
        if anc is None:
            raise DetforgeError(f"[{name}] has no anchors= line", path=path, line=start + 1)
        change(anc[0], anc[1], name, anchors)
    mask = _find_key(lines, start, end, "mask")
    num = _int_value(lines, start, end, "num", path=path, low=1)
    if name != "region" and mask is not None:
        count = len([v for v in mask[1].group(4).split(",") if v.strip()])
    elif num is not None:
        count = num[1]
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


def _net_size_and_batch(
    lines: list[str],
    net: tuple[int, int],
    size: tuple[int, int] | None,
    subdivisions: int | None,
    change: Callable[[int, re.Match[str], str, str], None],
    path: str | None,
) -> None:
    """Set ``width``/``height`` and ``batch``/``subdivisions`` in the [net] section."""
    start, end = net
    old = _net_wh(lines, net, path)
    new = size or old
    if size is not None:
        for key, value in (("width", size[0]), ("height", size[1])):
            found = _find_key(lines, start, end, key)
            if found is None:
                raise DetforgeError(f"[net] has no {key}= line", path=path, line=start + 1)
            change(found[0], found[1], "net", str(value))
    batch = _find_key(lines, start, end, "batch")
    subs = _find_key(lines, start, end, "subdivisions")
    b_value = _int_value(lines, start, end, "batch", path=path, low=1)
    s_value = _int_value(lines, start, end, "subdivisions", path=path, low=1)
    if batch is None or subs is None or b_value is None or s_value is None:
        return
    b, s = b_value[1], s_value[1]
    if b <= 1:  # "Testing" settings active: train with the commented "Training" ones
        trained = _commented_training(lines, start, end)
        b, s = trained.get("batch", 64), trained.get("subdivisions", 16)
        change(batch[0], batch[1], "net", str(b))
    if subdivisions is not None:
        if subdivisions < 1 or b % subdivisions:
            raise DetforgeError(f"--subdivisions {subdivisions} must divide batch={b}", path=path)
        target = subdivisions
    else:
        target = sensible_subdivisions(b, s, old, new)
    change(subs[0], subs[1], "net", str(target))


def rewrite_cfg(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    classes: int,
    max_batches: int | None = None,
    train_images: int = 0,
    size: tuple[int, int] | None = None,
    anchors: str | None = None,
    subdivisions: int | None = None,
    classes_from: str = "--classes",
    note: Callable[[str], None] | None = None,
) -> list[CfgChange]:
    """Read ``src``, write the rewritten cfg to ``dst`` atomically; returns the changes.

    ``src`` is never modified; ``dst`` equal to ``src`` is refused. Before anything is
    written, the new cfg is checked with the rules predict and train apply
    (:func:`~detforge.formats.darknet.cfg_check.check_rewritten`: a :class:`DetforgeError`
    naming ``src`` and the line, and, on a changed line, the option -- ``classes_from`` for
    the class count); ``note`` gets each note on what could not be checked.
    """
    s, d = Path(src), Path(dst)
    require_file(s, "cfg")
    if d.exists() and d.resolve() == s.resolve():
        raise DetforgeError(
            "output must differ from the input cfg (detforge never edits sources)", path=d
        )
    from detforge.models.darknet.cfg import read_cfg_text

    text = read_cfg_text(s, exact=True)  # the one cfg reader: a binary file is an error
    new, changes = rewrite_cfg_text(
        text,
        classes=classes,
        max_batches=max_batches,
        train_images=train_images,
        size=size,
        anchors=anchors,
        subdivisions=subdivisions,
        path=str(s),
    )
    from detforge.formats.darknet.cfg_check import check_rewritten

    for line in check_rewritten(new, changes, path=str(s), classes_from=classes_from):
        if note is not None:
            note(line)
    with atomic_open(d, "w", newline="", errors="surrogateescape") as f:
        f.write(new)
    return changes
