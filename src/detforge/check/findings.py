"""The findings model: one :class:`Finding` per problem, the table of stable codes, the report.

Every code the checker can emit is a key of :data:`CODES` and is documented in
``docs/checks.md`` (a test keeps the two in step). A code's severity is fixed by the table:

* ``error`` -- training or conversion will fail, silently lose data or produce NaN losses;
* ``warning`` -- the data is usable but probably not what the user meant (leaks, duplicates);
* ``info`` -- worth knowing (negative images, EXIF tags that other tools honour).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

RULES_VERSION = 4
"""Raised when what a check finds or says about a file changes (a rule, a message): the
per-file image results and the whole-check records (:mod:`detforge.check.files`,
:mod:`detforge.check.resultcache`) carry it in their names, so a check after an upgrade never
shows an older version's messages for unchanged files. (2: what a non-image file holds;
4: ``list-line``.)"""

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class CodeInfo:
    """What a code means: its severity and a one-line title (the message adds the details)."""

    severity: Severity
    title: str


def _c(severity: Severity, title: str) -> CodeInfo:
    return CodeInfo(severity, title)


CODES: dict[str, CodeInfo] = {
    # --- label lines (path = label file, line = 1-based line number)
    "label-fields": _c("error", "label line does not have 5 fields"),
    "label-not-number": _c("error", "label field is not a number"),
    "label-not-finite": _c("error", "label value is NaN or infinite"),
    "class-negative": _c("error", "class id is negative"),
    "class-not-integer": _c("error", "class id is not an integer"),
    "class-out-of-range": _c("error", "class id is not below the number of class names"),
    "coord-negative": _c("error", "box coordinate is negative"),
    "coord-above-one": _c("error", "normalized box coordinate is above 1"),
    "box-zero-size": _c("error", "box width or height is zero or negative"),
    "box-not-finite": _c("error", "box value is NaN, null or infinite"),
    "box-coordinate-huge": _c("error", "box value is beyond any image size"),
    "image-size-impossible": _c("error", "stated image size is not finite, negative or huge"),
    "box-outside-image": _c("warning", "box extends past the image border"),
    "box-subpixel": _c("warning", "box is narrower or shorter than one pixel"),
    "box-duplicate": _c("warning", "exact duplicate label line"),
    "box-near-duplicate": _c("warning", "two boxes of one class overlap almost completely"),
    "label-unreadable": _c("error", "label file cannot be read or is not text"),
    "label-bom": _c("error", "label file starts with a byte order mark (Darknet reads no box)"),
    # --- files
    "label-missing": _c("info", "image has no label file (treated as a negative image)"),
    "label-orphan": _c("warning", "label file has no image"),
    "image-missing": _c("error", "listed image does not exist"),
    "image-empty": _c("error", "image file is zero bytes"),
    "image-unreadable": _c("error", "image file cannot be opened"),
    "image-truncated": _c("error", "image file is cut off (header or end marker missing)"),
    "image-not-image": _c("error", "file is not an image"),
    "image-unsupported": _c("error", "image format is not supported"),
    "image-decode-failed": _c("error", "image data is corrupt or does not decode"),
    "image-tiny": _c("warning", "image is very small"),
    "image-exif-rotated": _c("warning", "image carries an EXIF rotation"),
    "image-extension": _c("info", "file extension does not match the image format"),
    "image-size-mismatch": _c("error", "the size the annotation states is not the image's"),
    "list-missing": _c("error", "image list named by the .data file does not exist"),
    "list-duplicate": _c("warning", "image listed more than once in one list"),
    "list-line": _c("warning", "list line that Darknet reads as another path (spaces, blank, #)"),
    # --- dataset
    "read-error": _c("error", "a dataset file could not be read"),
    "names-missing": _c("error", "class names file is missing"),
    "classes-mismatch": _c("error", "classes= in the .data file differs from the names"),
    "name-empty": _c("error", "class name is empty"),
    "name-duplicate": _c("error", "class name appears twice"),
    "name-whitespace": _c("warning", "class name contains whitespace"),
    "labelmap-mismatch": _c("error", "label map does not match the class names"),
    "class-no-boxes": _c("warning", "class has no boxes"),
    "class-imbalance": _c("warning", "class counts are strongly imbalanced"),
    "data-unknown-key": _c("info", "unknown key in the .data file"),
    "split-overlap": _c("error", "the same image is in two splits"),
    "split-identical-image": _c("warning", "byte-identical images in two splits"),
    "split-group-leak": _c("warning", "a sequence (group) is in two splits"),
    # --- TFRecords (path = record file, line = 1-based record number)
    "tfrecord-crc": _c("error", "TFRecord length or data CRC does not match"),
    "tfrecord-truncated": _c("error", "TFRecord ends inside a record (interrupted write)"),
    "tfrecord-example": _c("error", "record is not a valid tf.train.Example for detection"),
    "tfrecord-class": _c("error", "record class id or text disagrees with the label map"),
}
"""Every finding code, in the order ``docs/checks.md`` documents them."""


@dataclass(frozen=True)
class Finding:
    """One problem. ``line`` is 1-based (a record number for TFRecords), ``None`` if not a line."""

    severity: Severity
    code: str
    path: str | None
    line: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "path": self.path,
            "line": self.line,
            "message": self.message,
        }

    def location(self) -> str:
        """``path:line``, ``path`` or ``-``."""
        if self.path is None:
            return "-"
        return self.path if self.line is None else f"{self.path}:{self.line}"


def finding(
    code: str, message: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None
) -> Finding:
    """A :class:`Finding` with the severity the code table assigns to ``code``."""
    info = CODES[code]
    return Finding(info.severity, code, None if path is None else os.fspath(path), line, message)


_SEV_RANK = {"error": 0, "warning": 1, "info": 2}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then by code table order, path and line."""
    order = {c: i for i, c in enumerate(CODES)}
    return sorted(
        findings,
        key=lambda f: (_SEV_RANK[f.severity], order.get(f.code, 999), f.path or "", f.line or 0),
    )


@dataclass
class CheckReport:
    """The result of :func:`detforge.check.check_dataset`.

    ``findings`` are sorted errors first; ``summary`` holds counts (images, labels, boxes,
    classes, per severity and per code) and facts such as the seconds taken and cache use.
    """

    findings: list[Finding]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def codes(self) -> Counter[str]:
        """How many findings of each code."""
        return Counter(f.code for f in self.findings)

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    def to_dict(self) -> dict[str, Any]:
        """``{"findings": [...], "summary": {...}}`` as written by ``--json``."""
        return {"findings": [f.to_dict() for f in self.findings], "summary": self.summary}


def severity_counts(findings: list[Finding]) -> dict[str, int]:
    """``{"error": n, "warning": n, "info": n}``."""
    c = Counter(f.severity for f in findings)
    return {s: c.get(s, 0) for s in SEVERITIES}
