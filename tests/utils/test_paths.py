"""utils.paths: the one rule for "two spellings name the same file"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detforge.utils.paths import PathResolver, identity_keys, surely_distinct


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


def test_surely_distinct_answers_maybe_for_a_linked_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Distinct texts in folders resolving apart: surely distinct; a repeated text or two
    folder spellings of one folder: maybe (the caller then compares identity_keys)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data", target_is_directory=True)
    a, b = str(tmp_path / "data" / "x.jpg"), str(tmp_path / "other" / "x.jpg")
    linked = str(tmp_path / "link" / "x.jpg")
    assert surely_distinct([a, b, str(tmp_path / "data" / "y.jpg")])
    assert not surely_distinct([a, a])
    assert not surely_distinct([a, str(tmp_path / "link" / "y.jpg")])  # maybe: same folder
    assert len(set(identity_keys([a, linked]))) == 1 and not surely_distinct([a, linked])
    # unnormalized and relative spellings of one folder are resolved with it
    assert not surely_distinct([a, str(tmp_path / "data" / "." / "x.jpg")])
    assert not surely_distinct([a, str(tmp_path / "other" / ".." / "data" / "x.jpg")])
    monkeypatch.chdir(tmp_path / "data")
    assert not surely_distinct(["x.jpg", a])  # relative to the current folder
    assert surely_distinct(["x.jpg", b])
