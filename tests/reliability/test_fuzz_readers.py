"""Malformed values in every field of every reader (seeded generator, see generators.py).

For each generated dataset: ``info``, ``check`` and ``convert`` (the target format rotates
through all five) end in a correct result or one error line with exit 2, never a traceback;
the source tree is byte-identical afterwards and nothing is written outside OUT; a converted
dataset holds no NaN/inf/negative size; ``info`` and ``convert`` count the same boxes (the one
validity rule); a refused dataset converts under ``--skip-bad`` or is refused again in one line.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from detforge.formats.detect import FORMATS
from tests.reliability.generators import (
    Case,
    coco_cases,
    darknet_cases,
    tfrecord_cases,
    ultralytics_cases,
    voc_cases,
)
from tests.reliability.harness import (
    SourceGuard,
    assert_clean_outcome,
    assert_labels_finite,
    run_cli,
)

TARGETS = FORMATS  # every convert target


def _info_boxes(out: str) -> int | None:
    try:
        return int(json.loads(out)["splits"]["all"]["boxes"])
    except (ValueError, KeyError, TypeError):
        return None


def run_case(case: Case, root: Path, to: str) -> dict[str, int]:
    """Run the three commands on one generated dataset; returns their exit codes."""
    root.mkdir(parents=True)
    src = str(case.write(root))
    out = root.parent / f"{root.name}-out"  # not in the folder of the source's images
    guard = SourceGuard(root, out=out)
    info = run_cli(["info", src, "--json"])
    assert_clean_outcome(info, allowed=(0, 2))
    check = run_cli(["check", src, "--no-cache"])
    assert_clean_outcome(check, allowed=(0, 1, 2))
    conv = run_cli(["convert", src, str(out), "--to", to])
    assert_clean_outcome(conv, allowed=(0, 2))
    if conv.rc == 2 and "--skip-bad" in conv.err:
        assert check.rc == 1, f"{case.name}: convert refused boxes that check did not report"
        conv = run_cli(["convert", src, str(out), "--to", to, "--skip-bad"])
        assert_clean_outcome(conv, allowed=(0, 2))
    if conv.rc == 0:
        assert_labels_finite(out)
        m = re.search(r"converted \d+ images, (\d+) boxes", conv.out)
        n_info = _info_boxes(info.out) if info.rc == 0 else None
        # convert --skip-bad also leaves out boxes outside the image (check: coord-*), which
        # readers (and so info) keep
        outside = len(re.findall(r"note: left out: .*: (coord-\S+|outside the image)$", conv.out,
                                 flags=re.M))  # fmt: skip
        if m and n_info is not None and to != "darknet" and "crowd" not in conv.out:
            got = int(m.group(1)) + outside
            assert got == n_info, f"{case.name}: info {n_info} vs convert {m.group(1)}+{outside}"
    guard.check(case.name)
    return {"info": info.rc, "check": check.rc, "convert": conv.rc}


GENERATORS = {
    "coco": coco_cases,
    "voc": voc_cases,
    "darknet": darknet_cases,
    "ultralytics": ultralytics_cases,
    "tfrecord": tfrecord_cases,
}


@pytest.mark.parametrize("fmt", list(GENERATORS))
def test_every_field_of_every_reader(fmt: str, tmp_path: Path) -> None:
    cases = list(GENERATORS[fmt]())
    outcomes: dict[str, int] = {}
    for i, case in enumerate(cases):
        # three levels down: the generators' '..' paths (up to three, e.g. train: ../../..)
        # stay inside this test's folder instead of reading other tests' files
        root = tmp_path / "box" / "a" / "b" / f"c{i}"
        codes = run_case(case, root, TARGETS[i % len(TARGETS)])
        for cmd, rc in codes.items():
            outcomes[f"{cmd}:{rc}"] = outcomes.get(f"{cmd}:{rc}", 0) + 1
        shutil.rmtree(root)
    # both kinds of ending occur: the generator does produce hostile input and valid input
    assert (
        outcomes.get("convert:0", 0) > 0
        and outcomes.get("check:1", 0) + outcomes.get("check:2", 0) > 0
    )
    print(f"{fmt}: {len(cases)} cases, outcomes {sorted(outcomes.items())}")
