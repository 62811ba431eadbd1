"""Where a command's results go: :mod:`detforge.utils.outputs`."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.utils.outputs import claim_file, results_dir, run_name


def test_claim_file_refuses_a_file_where_a_folder_goes(tmp_path: Path) -> None:
    (tmp_path / "coco.names").write_text("keep")
    for target in (tmp_path / "coco.names" / "x.json", tmp_path / "coco.names" / "a" / "x"):
        with pytest.raises(DetforgeError, match="not a folder") as err:
            claim_file(target, exist_ok=True, option="--json")
        assert err.value.path == str(tmp_path / "coco.names")
    assert (tmp_path / "coco.names").read_text() == "keep"
    assert claim_file(tmp_path / "new" / "x.json", exist_ok=False) == tmp_path / "new" / "x.json"


def test_results_dir_numbers_the_folder_out_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out x/..``, ``.`` and ``x/`` are numbered by the real name of the folder they are
    (never ``x/..-2`` or a crash on the empty name of ``.``)."""
    root = tmp_path.resolve()
    (root / "proj" / "x").mkdir(parents=True)
    monkeypatch.chdir(root / "proj")
    assert results_dir("predict", out="x/..") == root / "proj-2"
    assert results_dir("predict", out=".") == root / "proj-2"
    assert results_dir("predict", out="x/") == Path("x-2")
    assert results_dir("predict", out="x/..", exist_ok=True) == root / "proj"
    assert results_dir("predict", out=".", exist_ok=True) == root / "proj"
    assert results_dir("predict", out="nx/..", exist_ok=True) == root / "proj"
    assert run_name(".") == run_name("x/..") == run_name("x/../") == "proj"
    assert run_name("x/") == "x" and run_name("") == "exp"
    with pytest.raises(DetforgeError, match="root folder exists"):
        results_dir("predict", out="/")
