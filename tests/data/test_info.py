"""detforge info's counts, against a dataset counted by hand."""

from __future__ import annotations

import numpy as np

from detforge.data.dataset import make_dataset
from detforge.data.stats import summarize


def test_counts_per_split_and_class_by_hand() -> None:
    # image 0 (train): cat, cat, dog; 1 (train): none; 2 (valid): dog; 3 (valid): bird, cat
    ds = make_dataset(
        ["cat", "dog", "bird"],
        paths=["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
        widths=[640, 320, 640, 100],
        heights=[480, 240, 480, 50],
        splits=["train", "train", "valid", "valid"],
        box_image=[0, 0, 0, 2, 3, 3],
        box_cls=[0, 0, 1, 1, 2, 0],
        box_coords=np.full((6, 4), 0.25),
        meta={"label_paths": ["a.txt", "", "c.txt", "d.txt"], "notes": ["n"]},
    )
    got = summarize(ds)
    train, valid, every = got["splits"]["train"], got["splits"]["valid"], got["splits"]["all"]
    assert list(got["splits"]) == ["train", "valid", "all"]
    assert (train["images"], train["labelled"], train["negatives"]) == (2, 1, 1)
    assert train["no_label_file"] == 1 and valid["no_label_file"] == 0
    assert train["per_class"] == {"cat": 2, "dog": 1, "bird": 0}
    assert train["images_per_class"] == {"cat": 1, "dog": 1, "bird": 0}
    assert valid["images_per_class"] == {"cat": 1, "dog": 1, "bird": 1}
    assert every["boxes"] == 6 and every["images_per_class"] == {"cat": 2, "dog": 2, "bird": 1}
    assert got["sizes"] == {"min": [100, 50], "max": [640, 480], "distinct": 3, "unknown": 0}
    assert got["notes"] == ["n"]
