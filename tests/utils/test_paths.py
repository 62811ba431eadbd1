"""utils.paths: the one rule for "two spellings name the same file"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detforge.utils.paths import PathResolver, identity_keys, normalize_path, surely_distinct


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


def test_normalize_path_collapses_dotdot_as_the_system_opens_it(tmp_path: Path) -> None:
    """``link/../a.jpg`` is the a.jpg beside the link's target, which is what open() reads;
    os.path.normpath makes it the a.jpg beside the link: another file."""
    root = tmp_path.resolve()
    (root / "real" / "sub").mkdir(parents=True)
    (root / "data").mkdir()
    os.symlink(root / "real" / "sub", root / "data" / "link")
    (root / "real" / "a.jpg").write_bytes(b"beside the target")
    (root / "data" / "a.jpg").write_bytes(b"beside the link")
    (root / "real" / "sub" / "b.jpg").write_bytes(b"b")
    links: dict[str, str | None] = {}
    for spelled in ["data/link/../a.jpg", "data/link/./../a.jpg", "data//link/../sub/b.jpg",
                    "data/link/../sub/../a.jpg", "data/../data/a.jpg", "real/sub/../a.jpg",
                    "data/link/b.jpg", "data/link/../../data/a.jpg"]:  # fmt: skip
        path = str(root / spelled)
        got = normalize_path(path, links)
        assert Path(got).read_bytes() == Path(path).read_bytes(), spelled  # the OS as judge
        assert ".." not in got.split(os.sep) and "//" not in got, got
    assert os.path.normpath(str(root / "data/link/../a.jpg")) == str(root / "data" / "a.jpg")
    assert normalize_path(str(root / "data/link/../a.jpg")) == str(root / "real" / "a.jpg")
    assert links[str(root / "data" / "link")] == str(root / "real" / "sub")  # checked once
    # without links (or a path that does not exist) it is os.path.normpath
    for text in ["/a/./b//c/../d", "a/../../x", "/..", "/../x", "./x", "x/..", "..", "",
                 "a/b/../../..", "/a/b/../../..", "a/b"]:  # fmt: skip
        assert normalize_path(text) == os.path.normpath(text), text
