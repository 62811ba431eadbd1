"""OUT of ``convert``, ``split`` and ``check --fix`` may not lie in the source's image, label
or dataset folders (one rule: :func:`detforge.utils.outdir.refuse_overlap`), yet may lie
beside the dataset or beside a list file whose images live elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.cli.main import main


def _dataset(root: Path, *, split_folders: bool) -> Path:
    """Darknet data in ``root``: images and labels in ``root/img`` (``split_folders``:
    ``root/images`` + ``root/labels``), ``obj.data`` with its lists beside; returns it."""
    img = root / ("images" if split_folders else "img")
    lab = root / "labels" if split_folders else img
    img.mkdir(parents=True)
    lab.mkdir(exist_ok=True)
    for i in range(4):
        Image.fromarray(np.full((24, 32, 3), 50 * i, np.uint8)).save(img / f"a{i}.jpg")
        (lab / f"a{i}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "obj.names").write_text("a\n")
    (root / "train.txt").write_text("".join(f"{img.name}/a{i}.jpg\n" for i in range(3)))
    (root / "valid.txt").write_text(f"{img.name}/a3.jpg\n")
    (root / "obj.data").write_text("classes=1\ntrain=train.txt\nvalid=valid.txt\nnames=obj.names\n")
    return root / "obj.data"


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _refused(argv: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OUT overlaps a folder the source is read from" in err[0]
    assert str(out) in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("split_folders", "inside"),
    [(False, "img/conv"), (True, "conv"), (True, "images/conv"), (True, "labels/conv")],
)
def test_convert_into_the_dataset_is_refused(
    tmp_path: Path, split_folders: bool, inside: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path / "ds", split_folders=split_folders)
    before = _files(tmp_path / "ds")
    out = tmp_path / "ds" / inside
    _refused(["convert", str(data), str(out), "--to", "coco"], out, capsys)
    assert _files(tmp_path / "ds") == before


def test_convert_folder_source_into_its_dataset_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _dataset(tmp_path / "ds", split_folders=True)
    out = tmp_path / "ds" / "conv"  # beside images/, inside ds where labels/ lives
    _refused(["convert", str(tmp_path / "ds" / "images"), str(out), "--to", "coco"], out, capsys)


def test_convert_beside_the_dataset_or_a_list_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _dataset(tmp_path / "ds", split_folders=True)
    assert main(["convert", str(data), str(tmp_path / "ds_coco"), "--to", "coco"]) == 0
    # beside obj.data and the image folder (images and labels together in img/): the folder
    # holding only the source file is not an image, label or dataset folder
    beside = _dataset(tmp_path / "dk", split_folders=False)
    assert main(["convert", str(beside), str(tmp_path / "dk" / "coco"), "--to", "coco"]) == 0
    # a list whose images live elsewhere: OUT beside the list adds nothing to the dataset
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "t.txt").write_text("".join(f"../ds/images/a{i}.jpg\n" for i in range(4)))
    (lists / "t.names").write_text("a\n")
    assert main(["convert", str(lists / "t.txt"), str(lists / "coco"), "--to", "coco"]) == 0
    # OUT under the working directory, the source elsewhere
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["convert", str(data), "coco", "--to", "coco"]) == 0
    assert (work / "coco" / "annotations").is_dir()


def test_split_and_check_fix_follow_the_same_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path / "ds", split_folders=True)
    before = _files(tmp_path / "ds")
    for inside in ("images/s", "labels/x/s", "s"):
        out = tmp_path / "ds" / inside
        _refused(["split", str(data), "--out", str(out), "--ratios", "0.5,0.5"], out, capsys)
        _refused(["check", str(data), "--fix", str(out)], out, capsys)
    assert _files(tmp_path / "ds") == before
    argv = ["split", str(data), "--out", str(tmp_path / "s"), "--ratios", "0.5,0.5"]
    assert main(argv) == 0
