"""The training-run part of the report: ``metrics.csv``, the per-epoch previews, ``config.yaml``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from detforge.errors import DetforgeError


def collect_run(run_dir: Path, out: Path) -> dict[str, Any]:
    """``{"dir", "columns", "rows", "previews": [{"epoch", "path"}], "config"}`` of a run
    folder written by ``detforge train``; the preview JPEGs are copied to ``out/run/`` (paths
    relative to ``out``). A folder with none of these files is a :class:`DetforgeError`."""
    from detforge.train.runs import read_metrics_csv

    if not run_dir.is_dir():
        raise DetforgeError("--run: not a folder", path=run_dir)
    rows = read_metrics_csv(run_dir / "metrics.csv")
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    previews: list[dict[str, Any]] = []
    pdir = run_dir / "preview"
    src = sorted(pdir.glob("epoch_*.jpg")) if pdir.is_dir() else []
    if src:
        (out / "run").mkdir(parents=True, exist_ok=True)
    for p in src:
        m = re.search(r"(\d+)", p.stem)
        rel = f"run/{p.name}"
        shutil.copyfile(p, out / rel)
        previews.append({"epoch": int(m.group(1)) if m else len(previews) + 1, "path": rel})
    cfg = run_dir / "config.yaml"
    config = cfg.read_text(encoding="utf-8", errors="replace") if cfg.is_file() else None
    if not rows and not previews and config is None:
        raise DetforgeError(
            "--run: no metrics.csv, preview/ or config.yaml here; give a folder written by "
            "'detforge train'",
            path=run_dir,
        )
    return {
        "dir": str(run_dir),
        "columns": columns,
        "rows": [[r.get(c) for c in columns] for r in rows],
        "previews": previews,
        "config": config,
    }
