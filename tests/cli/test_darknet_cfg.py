"""``detforge darknet-cfg`` in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.cli.main import main

CFG = "[net]\nmax_batches=500200\nsteps=400000,450000\n[convolutional]\nfilters=255\n" \
      "[yolo]\nmask=0,1,2\nclasses=80\nnum=9\n"  # fmt: skip


def test_classes_from_flag_and_from_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.cfg").write_text(CFG)
    out = tmp_path / "out.cfg"
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), "--classes", "4", "-o", str(out)]) == 0
    text = out.read_text()
    assert "classes=4" in text and "filters=27" in text and "max_batches=8000" in text
    assert "steps=6400,7200" in text
    assert "4 lines changed" in capsys.readouterr().out
    (tmp_path / "obj.names").write_text("a\nb\n")
    (tmp_path / "train.txt").write_text("".join(f"/x/{i}.jpg\n" for i in range(7000)))
    (tmp_path / "obj.data").write_text(
        f"classes=2\ntrain={tmp_path / 'train.txt'}\nnames={tmp_path / 'obj.names'}\n"
    )
    args = ["darknet-cfg", str(tmp_path / "in.cfg"), "--data", str(tmp_path / "obj.data"),
            "-o", str(out)]  # fmt: skip
    assert main(args) == 0
    text = out.read_text()
    assert "classes=2" in text and "filters=21" in text and "max_batches=7000" in text


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in.cfg").write_text(CFG)
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), "-o", str(tmp_path / "o.cfg")]) == 2
    assert "--classes N" in capsys.readouterr().err
    assert main(["darknet-cfg", str(tmp_path / "x.cfg"), "--classes", "2", "-o", "o"]) == 2
    assert "cfg file not found" in capsys.readouterr().err
