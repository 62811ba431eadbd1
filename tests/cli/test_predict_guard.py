"""``detforge predict`` never writes over a dataset's ground-truth labels, whatever the form
of SOURCE (a relative folder or image given from inside the dataset included)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from detforge.cli.main import main
from tests.predict.helpers import random_checkpoint, scenes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GT = "0 0.5 0.5 0.2 0.2\n"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("model") / "m.pt", imgsz=64)


def _darknet_layout(root: Path) -> dict[Path, bytes]:
    """``root/images/a0..a2.jpg`` with ground truth in ``root/labels``; every file's bytes."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i, im in enumerate(scenes(3, seed=7, w=64, h=48)):
        Image.fromarray(im).save(root / "images" / f"a{i}.jpg")
        (root / "labels" / f"a{i}.txt").write_text(GT)
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("source", ["images", "images/a0.jpg", "./images", "images/"])
def test_save_txt_from_inside_the_dataset_is_refused(
    tmp_path: Path,
    ckpt: Path,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _darknet_layout(tmp_path / "dl")
    monkeypatch.chdir(tmp_path / "dl")
    argv = ["predict", str(ckpt), source, "--out", ".", "--save-txt", "--exist-ok",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("detforge predict: error: ")
    assert "labels/a0.txt" in err[0] and "refusing to overwrite an input file" in err[0]
    assert _files(tmp_path / "dl") == before  # nothing replaced, nothing added


def test_every_other_writer_into_the_dataset_is_refused(
    tmp_path: Path, ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _darknet_layout(tmp_path / "dl")
    monkeypatch.chdir(tmp_path / "dl")
    base = ["predict", str(ckpt), "images", "--exist-ok", "--device", "cpu"]
    assert main([*base, "--out", "images"]) == 2  # annotated a0.jpg over images/a0.jpg
    assert main([*base, "--out", "images", "--save-images", "--save-txt"]) == 2
    assert main([*base, "--out", "labels/..", "--save-txt"]) == 2
    assert _files(tmp_path / "dl") == before


@pytest.mark.parametrize(
    ("source", "out"),
    [
        ("imgs", "dl"),  # the images through a link to their folder
        ("dl/images/../images", "dl"),
        ("dl/images", "dl-link"),  # OUT through a link to the dataset
        ("imgs", "dl-link/images"),  # annotated pictures over the images, both through links
    ],
)
def test_a_link_to_the_folder_does_not_get_around_the_guard(
    tmp_path: Path,
    ckpt: Path,
    source: str,
    out: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _darknet_layout(tmp_path / "dl")
    os.symlink(tmp_path / "dl" / "images", tmp_path / "imgs")
    os.symlink(tmp_path / "dl", tmp_path / "dl-link")
    monkeypatch.chdir(tmp_path)
    save = "--save-images" if out.endswith("images") else "--save-txt"
    argv = ["predict", str(ckpt), source, "--out", out, save, "--exist-ok", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to overwrite an input file" in err[0]
    named = f"{out}/a0.jpg" if save == "--save-images" else f"{out}/labels/a0.txt"
    assert f"error: {named}:" in err[0]  # named as the user spelled OUT
    assert _files(tmp_path / "dl") == before


def test_save_txt_outside_the_dataset_still_works(
    tmp_path: Path, ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _darknet_layout(tmp_path / "dl")
    monkeypatch.chdir(tmp_path / "dl")
    argv = ["predict", str(ckpt), "images", "--out", "../pred", "--save-txt", "--device", "cpu"]
    assert main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "pred" / "labels").iterdir()) == [
        "a0.txt", "a1.txt", "a2.txt"
    ]  # fmt: skip
    assert _files(tmp_path / "dl") == before
