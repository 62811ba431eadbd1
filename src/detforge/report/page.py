"""Writing the site: ``index.html``, ``assets/report*.js`` and ``report.css`` (package data,
copied as they are) and ``assets/data.js`` (the report's data as one JavaScript assignment, so
the page also works from ``file://``, where browsers refuse to fetch a JSON file)."""

from __future__ import annotations

import html
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from detforge.utils.io import atomic_write_bytes, atomic_write_text

ASSETS = ("report-base.js", "report-sections.js", "report.js", "report.css")
"""Hand-written files copied to ``assets/`` as they are (``index.html`` is filled in)."""


def _template(name: str) -> str:
    return resources.files("detforge.report").joinpath("templates", name).read_text("utf-8")


def _finite(x: Any) -> Any:
    """``x`` with NaN/inf floats replaced by ``None`` (JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def data_script(data: dict[str, Any]) -> str:
    """``window.DETFORGE_REPORT = {...};`` with ``<`` escaped so no string can end a script."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN somewhere: walk the data once to replace them
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"window.DETFORGE_REPORT = {text};\n"


def write_site(out: Path, data: dict[str, Any], *, title: str, version: str, created: str) -> Path:
    """Write ``out/index.html`` and ``out/assets/`` for ``data``; returns the index path."""
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(assets / "data.js", data_script(data).encode("utf-8"))
    for name in ASSETS:
        atomic_write_text(assets / name, _template(name))
    page = (
        _template("index.html")
        .replace("{{TITLE}}", html.escape(title))
        .replace("{{VERSION}}", html.escape(version))
        .replace("{{CREATED}}", html.escape(created))
    )
    atomic_write_text(out / "index.html", page)
    return out / "index.html"
