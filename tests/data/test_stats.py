"""Dataset statistics against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import make_dataset
from detforge.data.stats import compute_stats, format_stats
from detforge.data.stats_plots import plot_stats


def _ds(widths: list[int] | None = None):  # type: ignore[no-untyped-def]
    return make_dataset(
        ["a", "b", "unused"],
        paths=["1.jpg", "2.jpg", "3.jpg", "4.jpg"],
        widths=widths if widths is not None else [100, 100, 200, 50],
        heights=[100, 50, 100, 50],
        splits=["train", "train", "valid", "valid"],
        box_image=[0, 0, 1, 2],
        box_cls=[0, 1, 0, 0],
        box_coords=[[0, 0, 10, 40], [5, 5, 20, 20], [0, 0, 30, 30], [10, 10, 100, 25]],
        box_format=BoxFormat.XYWH_PIXEL,
    )


def test_counts_sizes_and_aspects_by_hand() -> None:
    stats = compute_stats(_ds())
    assert [s.name for s in stats] == ["train", "valid", "all"]
    train, valid, every = stats
    assert (train.images, train.negatives, train.boxes) == (2, 0, 3)
    assert (valid.images, valid.negatives, valid.boxes) == (2, 1, 1)
    assert train.class_counts.tolist() == [2, 1, 0] and train.class_images.tolist() == [2, 1, 0]
    assert every.boxes_per_image.tolist() == [2, 1, 1, 0]
    np.testing.assert_allclose(train.sizes, [20.0, 20.0, 30.0])  # sqrt(10*40), sqrt(20*20), 30
    np.testing.assert_allclose(valid.aspects, [4.0])  # 100 / 25
    assert train.units == "px"
    text = format_stats(stats, ("a", "b", "unused"))
    assert "classes without boxes: unused" in text
    assert "negatives (no boxes)" in text


def test_normalized_units_when_sizes_unknown(tmp_path: Path) -> None:
    ds = _ds().with_format(BoxFormat.CXCYWH_NORM)
    ds = make_dataset(
        ds.class_names,
        paths=ds.images.path.tolist(),
        splits=ds.images.split.tolist(),
        box_image=ds.boxes.image,
        box_cls=ds.boxes.cls,
        box_coords=ds.boxes.coords,
    )
    stats = compute_stats(ds)
    assert stats[-1].units == "normalized"
    np.testing.assert_allclose(stats[0].widths, [0.1, 0.2, 0.3])
    paths = plot_stats(stats, ds.class_names, tmp_path)
    assert [p.name for p in paths] == [
        "class_histogram.png", "boxes_per_image.png", "box_sizes.png", "aspect_ratios.png"
    ]  # fmt: skip
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_many_classes_plot_stays_readable(tmp_path: Path) -> None:
    names = [f"c{k}" for k in range(300)]
    rng = np.random.default_rng(0)
    ds = make_dataset(names, paths=["1.jpg"], widths=[10], heights=[10], splits="train",
                      box_image=np.zeros(500, int), box_cls=rng.integers(0, 300, 500),
                      box_coords=np.tile([0.5, 0.5, 0.2, 0.2], (500, 1)))  # fmt: skip
    paths = plot_stats(compute_stats(ds), names, tmp_path)
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.width < 3500  # 60 classes shown, not 300


def test_dataset_without_images_is_all_zeros(tmp_path: Path) -> None:
    ds = make_dataset(["a", "b"], paths=[])
    stats = compute_stats(ds)
    assert [(s.name, s.images, s.negatives, s.boxes) for s in stats] == [("all", 0, 0, 0)]
    assert stats[0].class_counts.tolist() == [0, 0]
    text = format_stats(stats, ("a", "b"))
    assert "classes without boxes: a, b" in text
    assert len(plot_stats(stats, ds.class_names, tmp_path)) == 4
