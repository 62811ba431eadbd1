"""The demo's data steps (see :mod:`detforge.cli.demo`): check the generated dataset, plant
the guide's faults in a copy and repair it, convert it to every other framework's files and
describe it with plots.

Each step reads what earlier steps left in ``run.files`` (``data``, ``split_data``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from detforge.cli.demo.basics import DemoRun, cli, cli_status

FORMATS = ("ultralytics", "coco", "voc", "tfrecord")


def _plant_faults(dataset: Path, out: Path) -> Path:
    """Copy the generated dataset's folder to ``out`` and break a few labels the way the
    guide's NaN-loss list says (negative coordinates, zero area, a bad class id, a duplicate
    line). Returns the copy's ``obj.data``. The generated dataset itself is not touched."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(dataset.parent, out)
    labels = sorted(p for p in (out / "images").rglob("*.txt") if p.stat().st_size > 0)
    faults = [
        "0 -0.10 0.50 0.20 0.20\n",  # negative coordinate
        "1 0.50 0.50 0.00 0.30\n",  # zero width
        "7 0.40 0.40 0.10 0.10\n",  # class id out of range (3 names)
    ]
    for path, line in zip(labels, faults, strict=False):
        with open(path, "a", encoding="utf-8") as f:
            f.write(line)
    dup = labels[len(faults)]
    first = dup.read_text(encoding="utf-8").splitlines(keepends=True)[0]
    with open(dup, "a", encoding="utf-8") as f:
        f.write(first)  # an exact duplicate line
    return out / dataset.name


def step_check(run: DemoRun) -> None:
    """``check`` the clean dataset, then a copy with planted faults, and ``--fix`` that copy."""
    # --exist-ok: the JSON of an earlier demo run into the same folder
    cli(["check", str(run.files["data"]), "--json", str(run.out / "check.json"), "--exist-ok"])
    broken = _plant_faults(run.files["data"], run.out / "check" / "broken")
    found = str(run.out / "check" / "broken.json")
    status = cli_status(["check", str(broken), "--json", found, "--exist-ok"])
    print(f"(exit status {status}: the planted faults were found, as expected)")
    fixed = run.out / "check" / "fixed"
    cli(["check", str(broken), "--fix", str(fixed), "--overwrite"])  # only ever our own output
    print(f"repaired copy: {fixed} (every change and its reason in {fixed / 'fixes.json'})")


def step_convert(run: DemoRun) -> None:
    """``convert`` to Ultralytics, COCO, VOC and TFRecord, and one of them back to Darknet."""
    root = run.out / "convert"
    for fmt in FORMATS:  # --overwrite replaces an earlier demo's output, never other files
        cli(["convert", str(run.dataset), str(root / fmt), "--to", fmt, "--overwrite"])
    back = root / "darknet-from-coco"
    cli(["convert", str(root / "coco"), str(back), "--to", "darknet", "--overwrite"])
    run.files["converted"] = root


def step_stats(run: DemoRun) -> None:
    """``stats``: class histograms and box size/aspect distributions per split, as PNGs."""
    cli(["stats", str(run.dataset), "--out", str(run.out / "stats")])
