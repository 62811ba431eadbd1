"""Darknet label files: where an image's label file is, and its ``class cx cy w h`` lines."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError


def label_path_candidates(image_path: str) -> list[str]:
    """Where the label file of ``image_path`` may be, in the order they are tried:

    1. same folder and stem with ``.txt`` (``a/b/x.jpg`` -> ``a/b/x.txt``);
    2. Darknet's rule: the first ``/JPEGImages/`` replaced by ``/labels/``;
    3. Ultralytics' rule: the last ``/images/`` replaced by ``/labels/``.
    """
    stem = os.path.splitext(image_path)[0]
    out = [stem + ".txt"]
    norm = stem.replace("\\", "/")
    if "/JPEGImages/" in norm:
        out.append(norm.replace("/JPEGImages/", "/labels/", 1) + ".txt")
    if "/images/" in norm:
        head, _, tail = norm.rpartition("/images/")
        cand = f"{head}/labels/{tail}.txt"
        if cand not in out:
            out.append(cand)
    return out


def find_label_path(image_path: str) -> str | None:
    """The first of :func:`label_path_candidates` that is a file, or ``None`` (a negative)."""
    for cand in label_path_candidates(image_path):
        if os.path.isfile(cand):
            return cand
    return None


_ASCII_SPACE = re.compile(r"[ \t\n\v\f\r]+")


def split_label_fields(line: str) -> list[str]:
    """The fields of one label line, split at ASCII whitespace only, as Darknet's ``fscanf``
    splits them: a no-break space (or any other non-ASCII space) stays inside its field, which
    then is not a number (:func:`is_label_number`). The one rule of the reader and the checker
    (:mod:`detforge.check.rows`)."""
    if line.isascii():
        return line.split()
    return [f for f in _ASCII_SPACE.split(line) if f]


def is_label_number(field: str) -> bool:
    """Whether a label field is a number as Darknet reads it (C's ``strtod``): Python's
    ``float()`` also takes ``_`` digit separators (``0.1_0``) and non-ASCII digits (``０``),
    Darknet does not. The one rule of the reader and the checker."""
    if not field.isascii() or "_" in field:
        return False
    try:
        float(field)
    except ValueError:
        return False
    return True


def parse_label_text(
    text: str, *, path: str | os.PathLike[str] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Parse Darknet label lines ``class cx cy w h`` (normalized, blank lines skipped).

    Returns ``cls (K,) int64`` and ``coords (K, 4) float64`` in ``CXCYWH_NORM``. Strict: a line
    with another number of fields (:func:`split_label_fields`), a non-integer class or a
    coordinate that is not a number as Darknet reads it (:func:`is_label_number`: ASCII, no
    ``_``) raises :class:`DetforgeError` with ``path`` and the 1-based line. Values are not
    range-checked here (that is ``detforge check``'s job).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    cls: list[int] = []
    coords: list[list[float]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        parts = split_label_fields(raw)
        if not parts:
            continue
        if not raw.isascii():
            ch = next(c for c in raw if not c.isascii())
            shown = raw.strip(" \t")  # str.strip() would hide a trailing no-break space
            raise DetforgeError(
                f"non-ASCII character {ch!r} (U+{ord(ch):04X}) in {shown!r}; Darknet reads "
                "ASCII numbers separated by spaces or tabs",
                path=path,
                line=n,
            )
        if len(parts) != 5:
            raise DetforgeError(
                f"expected 5 values 'class cx cy w h', got {len(parts)}: {raw.strip()!r}",
                path=path,
                line=n,
            )
        try:
            if not is_label_number(parts[0]):
                raise ValueError(parts[0])
            c = int(parts[0])
        except ValueError:
            raise DetforgeError(
                f"class id must be a whole number, got {parts[0]!r}", path=path, line=n
            ) from None
        if not -(2**31) <= c < 2**31:
            raise DetforgeError(f"class id {parts[0]} is out of range", path=path, line=n)
        if not all(map(is_label_number, parts[1:])):
            raise DetforgeError(
                f"coordinates must be numbers, got {' '.join(parts[1:])!r}", path=path, line=n
            )
        xywh = [float(v) for v in parts[1:]]
        if not all(np.isfinite(xywh)):
            raise DetforgeError(f"coordinates must be finite, got {xywh}", path=path, line=n)
        cls.append(c)
        coords.append(xywh)
    return (
        np.asarray(cls, dtype=np.int64),
        np.asarray(coords, dtype=np.float64).reshape(-1, 4),
    )


# A label file in the plain form nearly every tool writes: ASCII, lines of an integer class
# and four decimal numbers, or blank. Files that match are parsed in bulk; anything else (a
# BOM, other whitespace, nan/inf, malformed lines) goes through parse_label_text, which gives
# the same values and the same errors, one file at a time.
_NUM = rb"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_LINE = rb"[ \t]*+(?:[-+]?[0-9]{1,15}(?:[ \t]++" + _NUM + rb"){4}[ \t]*+)?"
# atomic and possessive: a failed match never backtracks into earlier lines (linear time)
_PLAIN = re.compile(rb"(?>" + _LINE + rb"(?:\r\n|\r|\n))*+" + _LINE)
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 13, 32]] = True


def parse_label_files(
    blobs: Sequence[bytes], paths: Sequence[str]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Parse many label files' bytes at once (:func:`parse_label_text` rules and errors).

    Returns ``cls (M,) int64``, ``coords (M, 4) float64`` (``CXCYWH_NORM``, file after file)
    and ``counts (F,)``: boxes per file. ``paths`` name the files in error messages.
    """
    f = len(blobs)
    if f == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float64), np.zeros(0, np.int64)
    big = b"\n".join(blobs)
    if _PLAIN.fullmatch(big) is not None:
        got = _parse_plain(big, [len(b) for b in blobs])
        if got is not None:
            return got
    cls_parts: list[NDArray[np.int64]] = []
    xy_parts: list[NDArray[np.float64]] = []
    counts = np.zeros(f, dtype=np.int64)
    run: list[int] = []  # consecutive plain files, parsed together

    def flush() -> None:
        if not run:
            return
        got = _parse_plain(b"\n".join(blobs[i] for i in run), [len(blobs[i]) for i in run])
        if got is None:  # an overflow to inf somewhere: let the strict parser name it
            for i in run:
                c, xy = parse_label_text(blobs[i].decode("ascii"), path=paths[i])
                cls_parts.append(c)
                xy_parts.append(xy)
                counts[i] = len(c)
        else:
            cls_parts.append(got[0])
            xy_parts.append(got[1])
            counts[run] = got[2]
        run.clear()

    for i, b in enumerate(blobs):
        if _PLAIN.fullmatch(b) is not None:
            run.append(i)
            continue
        flush()
        c, xy = parse_label_text(b.decode("utf-8", "replace"), path=paths[i])
        cls_parts.append(c)
        xy_parts.append(xy)
        counts[i] = len(c)
    flush()
    return np.concatenate(cls_parts), np.concatenate(xy_parts).reshape(-1, 4), counts


def _parse_plain(
    big: bytes, lengths: list[int]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]] | None:
    """Plain label files joined by ``\\n`` (``lengths``: bytes of each before joining);
    ``None`` when a number overflows to infinity."""
    a = np.frombuffer(big, dtype=np.uint8)
    ws = _WS[a]
    starts = np.flatnonzero(~ws & np.concatenate(([True], ws[:-1])))  # first byte of tokens
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64) + 1)  # one past each file's separator
    counts = np.bincount(np.searchsorted(ends, starts, side="right"), minlength=len(lengths))
    if len(starts) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float64), counts[: len(lengths)] // 5
    vals = np.fromstring(big.decode("ascii"), dtype=np.float64, sep=" ")  # type: ignore[call-overload]
    if len(vals) != len(starts):  # cannot happen for text the pattern accepted
        raise AssertionError("label token count mismatch")
    if not np.isfinite(vals).all():
        return None
    vals = vals.reshape(-1, 5)
    # classes have at most 15 digits, so float64 holds them exactly
    return vals[:, 0].astype(np.int64), np.ascontiguousarray(vals[:, 1:]), counts // 5


def format_label_lines(cls: NDArray[np.int64], coords: NDArray[np.float64]) -> str:
    """Darknet label text for ``cls (K,)`` and normalized ``coords (K, 4)``, 6 decimals."""
    return "".join(
        f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
        for c, (x, y, w, h) in zip(cls.tolist(), coords.tolist(), strict=True)
    )
