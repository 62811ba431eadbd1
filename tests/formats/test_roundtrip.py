"""Darknet -> X -> Darknet is lossless for every format X (classes, splits, boxes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.data.dataset import Dataset
from detforge.formats.darknet import read_darknet, write_darknet
from detforge.formats.detect import detect_format, read_any, write_any
from tests.formats.fmt_helpers import assert_same_dataset, make_image_dataset


@pytest.fixture(scope="module")
def darknet_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset]:
    root = tmp_path_factory.mktemp("rt")
    ds = make_image_dataset(root, num_images=14, num_classes=11, negatives=3)
    data = write_darknet(ds, root / "darknet0")
    return root, read_darknet(data, cache=False)


@pytest.mark.parametrize("fmt", ["ultralytics", "coco", "voc", "tfrecord"])
def test_darknet_to_x_to_darknet_is_identical(
    fmt: str, darknet_source: tuple[Path, Dataset], tmp_path: Path
) -> None:
    _, d0 = darknet_source
    assert d0.num_boxes > 20 and int((d0.boxes_per_image() == 0).sum()) == 3
    result = write_any(d0, tmp_path / fmt, to=fmt, shards=2 if fmt == "tfrecord" else 1)
    src = result.path.parent if fmt == "tfrecord" else result.path
    assert detect_format(src) == fmt
    dx = read_any(src, extract_images_to=tmp_path / "extracted")
    assert_same_dataset(d0, dx)
    d1 = read_darknet(write_darknet(dx, tmp_path / "darknet1"), cache=False)
    assert_same_dataset(d0, d1)
    # Image sizes survive too (they are in every format or read from the images).
    for split in d0.splits():
        assert sorted(d0.split(split).images.width.tolist()) == sorted(
            d1.split(split).images.width.tolist()
        )


@pytest.mark.parametrize("fmt", ["voc", "tfrecord"])
def test_difficult_and_truncated_survive(fmt: str, tmp_path: Path) -> None:
    ds = make_image_dataset(tmp_path, num_images=9, num_classes=4, negatives=1, fmt="jpg")
    assert ds.boxes.difficult.any() and ds.boxes.truncated.any()
    result = write_any(ds, tmp_path / fmt, to=fmt)
    src = result.path.parent if fmt == "tfrecord" else result.path
    assert_same_dataset(ds, read_any(src), flags=True)


def test_images_linked_not_copied_and_none_writes_labels_only(
    darknet_source: tuple[Path, Dataset], tmp_path: Path
) -> None:
    _, d0 = darknet_source
    out = write_any(d0, tmp_path / "linked", to="ultralytics").path.parent
    placed = sorted((out / "images").rglob("*.png"))
    assert len(placed) == d0.num_images
    assert all(p.stat().st_nlink >= 2 or p.is_symlink() for p in placed)
    out2 = write_any(d0, tmp_path / "none", to="voc", images="none").path
    assert not (out2 / "JPEGImages").exists()
    assert len(list((out2 / "Annotations").glob("*.xml"))) == d0.num_images
    out3 = write_any(d0, tmp_path / "copy", to="voc", images="copy").path
    copied = sorted((out3 / "JPEGImages").iterdir())
    assert len(copied) == d0.num_images
    assert all(p.stat().st_nlink == 1 and not p.is_symlink() for p in copied)
