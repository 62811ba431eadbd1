"""The code table, its documentation and the report formats."""

from __future__ import annotations

import json
import re
from pathlib import Path

from detforge.check.findings import CODES, CheckReport, finding, sort_findings
from detforge.check.report import format_report, report_json

DOCS = Path(__file__).resolve().parents[2] / "docs" / "checks.md"


def test_every_code_is_documented_with_its_severity() -> None:
    rows = dict(
        re.findall(r"^\| `([a-z0-9-]+)` \| (error|warning|info) \|", DOCS.read_text(), re.M)
    )
    assert rows == {code: info.severity for code, info in CODES.items()}


def test_findings_sort_and_render() -> None:
    fs = [
        finding("label-missing", "negative", path="b.jpg"),
        finding("box-duplicate", "dup", path="a.txt", line=3),
        finding("label-fields", "bad", path="a.txt", line=9),
        finding("label-fields", "bad", path="a.txt", line=2),
    ]
    ordered = sort_findings(fs)
    assert [(f.code, f.line) for f in ordered] == [
        ("label-fields", 2),
        ("label-fields", 9),
        ("box-duplicate", 3),
        ("label-missing", None),
    ]
    report = CheckReport(ordered, {"source": "x", "format": "darknet", "images": 2})
    text = format_report(report, shown=1)
    assert "ERROR label-fields (2): label line does not have 5 fields" in text
    assert "    a.txt:2: bad" in text and "... and 1 more" in text
    assert "2 errors, 1 warnings, 1 notes" in text
    doc = json.loads(report_json(report))
    assert doc["findings"][3] == {
        "severity": "info",
        "code": "label-missing",
        "path": "b.jpg",
        "line": None,
        "message": "negative",
    }
