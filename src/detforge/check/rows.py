"""The label rows every check works on (one row per box, from any source format), and the
bulk parser of Darknet label text into rows.

Darknet stops reading a label file at its first malformed line and says nothing; the checker
reads *every* line of every file and reports each bad one with its 1-based line number. The
parsing is done in bulk: all lines of all files are split once, the fields of the well-formed
lines are converted to one ``float64`` array by numpy, and a per-token Python fallback runs only
when that conversion fails, to locate the bad tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from numpy.typing import NDArray

from detforge.check.findings import Finding, finding
from detforge.formats.darknet.labels import is_label_number, split_label_fields


@dataclass(frozen=True, eq=False)
class LabelRows:
    """Label lines that parsed as five finite numbers; every array has ``K`` rows.

    ``file`` indexes the label files given to :func:`parse_label_texts`, ``line`` is 1-based,
    ``cls`` is the class id as float (checked later), ``coords`` ``(K, 4)`` is CXCYWH_NORM.
    """

    file: NDArray[np.int64]
    line: NDArray[np.int64]
    cls: NDArray[np.float64]
    coords: NDArray[np.float64]
    int_text: NDArray[np.bool_]
    """``(K,)`` whether the class field is written as a plain integer (``"3"``, not ``"3.0"``)."""
    cls_text: list[str] | None = None
    """The class fields as written (Darknet text sources only)."""
    describe: list[str] | None = None
    """How to name each box in messages when it has no line (e.g. VOC pixel corners)."""

    def __len__(self) -> int:
        return len(self.file)


_INT_CHARS = frozenset("0123456789")


def _split_lines(text: str) -> list[str]:
    # The same line numbering as detforge.formats.darknet (LF, CRLF or CR end a line).
    return text.splitlines()


# Over 80 lines on purpose: one bulk parse of every line; the slow per-token path only
# locates bad tokens.
def parse_label_texts(
    texts: Sequence[str | None], paths: Sequence[str]
) -> tuple[LabelRows, list[Finding]]:
    """Parse label file contents (``None`` = no file) into rows plus findings for bad lines.

    Reports ``label-bom`` (a byte order mark, which Darknet does not skip), ``label-fields``,
    ``label-not-number`` and ``label-not-finite``; blank lines are ignored. Everything else
    about the values is left to :func:`check_boxes`.
    """
    findings: list[Finding] = []
    for k, t in enumerate(texts):
        if t and t.startswith("\ufeff"):
            findings.append(
                finding(
                    "label-bom",
                    "the file starts with a UTF-8 byte order mark: Darknet's reader stops at "
                    "it and trains this image with no boxes; save it without one (--fix "
                    "writes it without)",
                    path=paths[k],
                    line=1,
                )
            )
    texts = [t[1:] if t and t.startswith("\ufeff") else t for t in texts]
    per_file = [_split_lines(t) if t else [] for t in texts]
    counts = np.fromiter(map(len, per_file), dtype=np.int64, count=len(per_file))
    lines = list(chain.from_iterable(per_file))
    # fields split at ASCII whitespace only (split_label_fields: a no-break space is no
    # separator); str.split is the same rule for ASCII text, and faster
    split = str.split if all(map(str.isascii, lines)) else split_label_fields
    nfields = np.fromiter(map(len, map(split, lines)), dtype=np.int64, count=len(lines))
    file_of = np.repeat(np.arange(len(per_file), dtype=np.int64), counts)
    line_no = np.arange(len(lines), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    line_no += 1
    for i in np.flatnonzero((nfields != 5) & (nfields != 0)).tolist():
        findings.append(
            finding(
                "label-fields",
                f"{nfields[i]} fields, expected 5 ('class cx cy w h'); Darknet reads a label "
                "file as a stream of 5 numbers per box, so from here on it silently misreads "
                "or drops the rest of this file -- fix or delete the line (--fix drops it)",
                path=paths[int(file_of[i])],
                line=int(line_no[i]),
            )
        )
    ok = np.flatnonzero(nfields == 5)
    good_lines = [lines[i] for i in ok.tolist()]
    good_file = file_of[ok]
    good_no = line_no[ok]
    file_a, line_a = good_file, good_no
    joined = " ".join(good_lines)
    tokens = joined.split()
    vals: NDArray[np.float64] | None = None
    if joined.isascii() and "_" not in joined:
        try:
            vals = np.asarray(tokens, dtype=np.float64).reshape(-1, 5)
        except ValueError:
            vals = None
    if vals is None:  # locate the bad tokens line by line
        keep = np.ones(len(good_lines), dtype=bool)
        rows: list[list[float]] = []
        for i, raw in enumerate(good_lines):
            parts = split_label_fields(raw)
            bad = [t for t in parts if not is_label_number(t)]
            if bad:
                keep[i] = False
                findings.append(
                    finding(
                        "label-not-number",
                        f"field {bad[0]!r} is not a number; write plain decimal numbers "
                        "('0 0.5 0.5 0.2 0.1') (--fix drops the line)",
                        path=paths[int(good_file[i])],
                        line=int(good_no[i]),
                    )
                )
            else:
                rows.append([float(t) for t in parts])
        vals = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        file_a, line_a = file_a[keep], line_a[keep]
        tokens = " ".join(good_lines[i] for i in np.flatnonzero(keep)).split()
    cls_tok = tokens[0::5]
    if all(map(str.isdigit, cls_tok)):
        int_text = np.ones(len(cls_tok), dtype=bool)
    else:
        int_text = np.fromiter(
            (t.isdigit() or (t[:1] in "+-" and t[1:].isdigit()) for t in cls_tok),
            dtype=bool,
            count=len(cls_tok),
        )
    finite = np.isfinite(vals).all(axis=1)
    for i in np.flatnonzero(~finite).tolist():
        findings.append(
            finding(
                "label-not-finite",
                "a value is NaN or infinite; this line turns the loss into NaN "
                "(--fix drops the line)",
                path=paths[int(file_a[i])],
                line=int(line_a[i]),
            )
        )
    rows_ok = LabelRows(
        file=file_a[finite],
        line=line_a[finite],
        cls=vals[finite, 0],
        coords=vals[finite, 1:],
        int_text=int_text[finite],
        cls_text=[t for t, ok in zip(cls_tok, np.asarray(finite).tolist(), strict=True) if ok],
    )
    return rows_ok, findings
