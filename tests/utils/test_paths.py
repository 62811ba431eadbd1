"""utils.paths: the one rule for "two spellings name the same file"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detforge.utils.paths import PathResolver, identity_keys


def test_links_to_folders_and_dotdot_are_seen_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path.resolve()
    (root / "ds" / "images").mkdir(parents=True)
    (root / "ds" / "images" / "a.jpg").write_bytes(b"x")
    os.symlink(root / "ds" / "images", root / "imgs")  # a link to the folder
    os.symlink(root / "ds" / "images" / "a.jpg", root / "a-link.jpg")  # a link to the file
    monkeypatch.chdir(root)
    real = str(root / "ds" / "images" / "a.jpg")
    spellings = [
        real,
        "ds/images/a.jpg",
        "imgs/a.jpg",
        "imgs/../images/a.jpg",  # imgs/.. is ds (the link's target's parent), not root
        "ds/images/../images/a.jpg",
        "./ds//images/a.jpg",
    ]
    r = PathResolver()
    assert [r.real(p) for p in spellings] == [real] * len(spellings)
    assert len(set(identity_keys(spellings))) == 1
    # a link to a *file* is a file of its own (its label file lies beside the link)
    assert r.real("a-link.jpg") == str(root / "a-link.jpg")
    assert (
        r.folder("imgs")
        == r.folder("imgs/")
        == r.folder("ds/images/.")
        == str(root / "ds" / "images")
    )
    assert r.real("imgs/..") == str(root / "ds") and r.real(".") == str(root)
    assert identity_keys([]) == []
