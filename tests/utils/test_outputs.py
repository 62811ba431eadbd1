"""Where a command's results go: :mod:`detforge.utils.outputs`."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.utils.outputs import claim_file


def test_claim_file_refuses_a_file_where_a_folder_goes(tmp_path: Path) -> None:
    (tmp_path / "coco.names").write_text("keep")
    for target in (tmp_path / "coco.names" / "x.json", tmp_path / "coco.names" / "a" / "x"):
        with pytest.raises(DetforgeError, match="not a folder") as err:
            claim_file(target, exist_ok=True, option="--json")
        assert err.value.path == str(tmp_path / "coco.names")
    assert (tmp_path / "coco.names").read_text() == "keep"
    assert claim_file(tmp_path / "new" / "x.json", exist_ok=False) == tmp_path / "new" / "x.json"
