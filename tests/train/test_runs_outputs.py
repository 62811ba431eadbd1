"""``detforge train`` with a file where its run folder must be made (the default ``runs``
folder, ``--out`` or a folder above it): one line naming the file, exit 2, no traceback,
nothing written, the file left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.cli.main import main
from tests.train._tiny import tiny_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


FAST = ["--imgsz", "64", "--batch", "4", "--workers", "0", "--epochs", "1", "--no-progress",
        "--no-plots", "--no-tensorboard"]  # fmt: skip


def test_train_refuses_a_file_in_the_run_folder_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_data(tmp_path / "ds")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    Path("runs").write_text("keep")
    cases = [
        ([], "runs", "move that file away, or give --out DIR"),
        (["--out", "runs/x"], "runs", "give another --out"),
        (["--out", "runs/x/y", "--exist-ok"], "runs", "give another --out"),
        (["--out", "runs", "--exist-ok"], "runs", "--out is an existing file"),
    ]
    for extra, named, fix in cases:
        assert main(["train", str(data), *FAST, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"detforge train: error: {named}: ") and fix in err, err
    assert Path("runs").read_text() == "keep"
    assert [p.name for p in work.iterdir()] == ["runs"]
