"""Human and JSON output of a :class:`~detforge.check.findings.CheckReport`.

The human form groups findings by code (errors first), with the count, the code's title and
the first few locations with their messages; the JSON form is ``{"findings": [...],
"summary": {...}}`` with one object per finding (``severity``, ``code``, ``path``, ``line``,
``message``).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

from detforge.check.findings import CODES, CheckReport, Finding
from detforge.utils.io import atomic_write_text

_LABEL = {"error": "ERROR", "warning": "WARN ", "info": "info "}


def _headline(summary: dict[str, object]) -> list[str]:
    src = summary.get("source", "?")
    fmt = summary.get("format", "?")
    lines = [f"checked {src} ({fmt})"]
    parts = [f"{summary.get('images', 0)} images"]
    splits = summary.get("splits")
    if isinstance(splits, dict) and any(splits):
        parts[0] += " (" + ", ".join(f"{k or 'no split'} {v}" for k, v in splits.items()) + ")"
    if "label_files" in summary:
        parts.append(f"{summary['label_files']} label files")
    parts.append(f"{summary.get('boxes', 0)} boxes")
    if summary.get("classes") is not None:
        parts.append(f"{summary['classes']} classes")
    tail = f"{summary.get('seconds', 0)} s"
    if summary.get("cached_files"):
        tail += f", {summary['cached_files']} of {summary.get('files', '?')} files from cache"
    if summary.get("deep"):
        tail += ", every image decoded"
    lines.append("  " + ", ".join(parts) + f" -- {tail}")
    notes = summary.get("notes")
    if isinstance(notes, list):
        lines += [f"  note: {n}" for n in notes]
    return lines


def format_report(report: CheckReport, *, shown: int = 5) -> str:
    """The report as text: a headline, then one block per code with ``shown`` locations."""
    out = _headline(report.summary)
    groups: dict[str, list[Finding]] = defaultdict(list)
    for f in report.findings:
        groups[f.code].append(f)
    for code, items in groups.items():
        sev = items[0].severity
        title = CODES[code].title if code in CODES else code
        out.append("")
        out.append(f"{_LABEL[sev]} {code} ({len(items)}): {title}")
        for f in items[:shown]:
            out.append(f"    {f.location()}: {f.message}")
        if len(items) > shown:
            out.append(f"    ... and {len(items) - shown} more (all of them in --json output)")
    n_err = len(report.errors)
    n_warn = len(report.warnings)
    n_info = len(report.findings) - n_err - n_warn
    out.append("")
    if not report.findings:
        out.append("no problems found")
    else:
        out.append(f"{n_err} errors, {n_warn} warnings, {n_info} notes (codes: docs/checks.md)")
    return "\n".join(out)


def report_json(report: CheckReport) -> str:
    """``{"findings": [...], "summary": {...}}`` as indented JSON text."""
    return json.dumps(report.to_dict(), indent=1, ensure_ascii=False, default=str) + "\n"


def write_json(report: CheckReport, path: str | os.PathLike[str]) -> None:
    """Write :func:`report_json` to ``path`` atomically."""
    atomic_write_text(path, report_json(report))
