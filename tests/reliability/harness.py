"""The invariants every reliability case is held to, and an in-process CLI runner.

A case is a command run on hostile input. It passes when it ends in a correct result (exit 0,
or 1 for ``check`` reporting the problems) or in exactly one error line with exit 2, and

* printed no traceback (an exception escaping ``main`` fails the case outright);
* left the source tree byte-identical (:func:`tree_digest` before and after);
* wrote nothing outside OUT (everything under the case's root but outside OUT and the
  cache folder is part of the "source" digest);
* (convert) wrote no ``nan``/``inf``/negative size into a label file.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detforge.cli.main import main
from tests.reliability.builders import tree_digest

_BAD_NUMBER = re.compile(r"(?i)\b(nan|inf|infinity)\b")
_XML_NUMBER = re.compile(r"<(xmin|ymin|xmax|ymax|width|height)>([^<]*)</")


def _refuse_constant(name: str) -> float:
    raise AssertionError(f"{name} written into a JSON file")


@dataclass
class Outcome:
    argv: list[str]
    rc: int
    out: str
    err: str


def run_cli(argv: Sequence[str]) -> Outcome:
    """``detforge ARGV`` in this process, stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            rc = int(exc.code or 0)
    return Outcome(list(argv), rc, out.getvalue(), err.getvalue())


def assert_clean_outcome(o: Outcome, *, allowed: Sequence[int] = (0, 1, 2)) -> None:
    """Exit status allowed; exit 2 is exactly one ``detforge CMD: error:`` line; no traceback."""
    where = " ".join(o.argv)
    assert "Traceback" not in o.err and "Traceback" not in o.out, f"{where}\n{o.err}"
    assert o.rc in allowed, f"{where}: exit {o.rc}\n{o.err[-2000:]}"
    if o.rc == 2:
        lines = [ln for ln in o.err.splitlines() if ln.strip()]
        assert len(lines) == 1, f"{where}: expected one error line, got\n{o.err}"
        assert re.match(r"(detforge \S+: error: |usage: )", lines[0]), lines[0]


def assert_labels_finite(out: Path) -> int:
    """Every Darknet/Ultralytics label file, COCO JSON and VOC XML under ``out`` is free of
    NaN/inf and negative sizes; returns how many files were looked at."""
    n = 0
    for p in out.rglob("*"):
        if p.is_symlink() or not p.is_file():
            continue
        if p.suffix == ".txt" and p.name not in ("train.txt", "valid.txt", "test.txt"):
            text = p.read_text(encoding="utf-8", errors="replace")
            if p.parent.name == "Main":  # VOC ImageSets
                continue
            for line in text.splitlines():
                parts = line.split()
                if len(parts) == 5:
                    assert not _BAD_NUMBER.search(line), f"{p}: {line}"
                    assert float(parts[3]) >= 0 and float(parts[4]) >= 0, f"{p}: {line}"
            n += 1
        elif p.suffix == ".json" and p.name not in (".detforge-output.json", "fixes.json"):
            json.loads(p.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
            n += 1
        elif p.suffix == ".xml":
            text = p.read_text(encoding="utf-8", errors="replace")
            for tag, value in _XML_NUMBER.findall(text):
                v = float(value)
                assert math.isfinite(v), f"{p}: <{tag}>{value}"
                assert tag in ("xmin", "ymin", "xmax", "ymax") or v >= 0, f"{p}: <{tag}>{value}"
            n += 1
    return n


class SourceGuard:
    """Digest ``root`` (minus OUT and the cache) before a case; :meth:`check` after it."""

    def __init__(self, root: Path, *, out: Path | None = None, cache: Path | None = None):
        self.root, self.out, self.cache = root, out, cache
        self.before = self._digest()

    def _digest(self) -> dict[str, str]:
        skip = [q for q in (self.out, self.cache) if q is not None]
        rels = [str(q.relative_to(self.root)) for q in skip if self.root in q.parents]
        return {
            k: v
            for k, v in tree_digest(self.root).items()
            if not any(k == r or k.startswith(r + "/") for r in rels)
        }

    def check(self, what: str = "") -> None:
        after = self._digest()
        changed = sorted(
            k for k in self.before.keys() | after.keys() if self.before.get(k) != after.get(k)
        )
        assert not changed, f"{what}: source tree or files outside OUT changed: {changed[:10]}"
