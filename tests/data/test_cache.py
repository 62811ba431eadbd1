from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from detforge.data.cache import (
    FileIndexCache,
    decode_strings,
    default_cache_dir,
    encode_strings,
    gather_ragged,
)
from detforge.utils.filestat import stat_many


def test_default_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("DETFORGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "detforge"


def test_strings_and_ragged_round_trip() -> None:
    names = ["a", "", "dir/ü/b c.jpg", "x\udcff"]
    assert decode_strings(encode_strings(names), 4) == names
    assert decode_strings(encode_strings([]), 0) == []
    values = np.arange(10) * 10
    counts = np.array([2, 0, 3, 5])
    got, c = gather_ragged(values, counts, np.array([3, 0, 1, 2]))
    assert c.tolist() == [5, 2, 0, 3]
    assert got.tolist() == [50, 60, 70, 80, 90, 0, 10, 20, 30, 40]


def test_lookup_is_fresh_only_while_size_and_mtime_match(tmp_path: Path) -> None:
    files = [tmp_path / f"{i}.bin" for i in range(4)]
    for i, f in enumerate(files):
        f.write_bytes(b"x" * i)
    paths = [str(f) for f in files]
    size, mtime = stat_many([*paths, str(tmp_path), str(tmp_path / "nope")])
    assert size.tolist() == [0, 1, 2, 3, -1, -1] and mtime[-1] == -1
    size, mtime = size[:4], mtime[:4]
    cache = FileIndexCache.for_source(tmp_path, kind="test", cache_dir=tmp_path / "cache")
    assert len(cache) == 0
    ok = cache.store(
        paths,
        size,
        mtime,
        columns={"w": np.array([1, 2, 3, 4])},
        strings={"note": ["a", "b", "c", "d"]},
        ragged={"v": (np.arange(6.0).reshape(3, 2), np.array([1, 0, 2, 0]))},
    )
    assert ok
    files[1].write_bytes(b"yy")  # size change
    os.utime(files[2], ns=(5, 5))  # mtime change only
    again = FileIndexCache.for_source(tmp_path, kind="test", cache_dir=tmp_path / "cache")
    query = [paths[3], paths[1], paths[2], paths[0], str(tmp_path / "new")]
    s2, m2 = stat_many(query)
    rows, fresh = again.lookup(query, s2, m2)
    assert rows.tolist() == [3, 1, 2, 0, -1]
    assert fresh.tolist() == [True, False, False, True, False]
    assert again.column("w")[rows[fresh]].tolist() == [4, 1]
    assert again.strings("note")[2] == "c"
    vals, counts = again.ragged("v", np.array([2, 0]))
    assert counts.tolist() == [2, 1] and vals.tolist() == [[2, 3], [4, 5], [0, 1]]
    # another kind of the same source is a separate table
    assert len(FileIndexCache.for_source(tmp_path, kind="check", cache_dir=tmp_path / "cache")) == 0


def test_unwritable_or_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = FileIndexCache.for_source(tmp_path, kind="t", cache_dir=blocker / "sub")
    assert cache.store(["a"], np.array([1]), np.array([1])) is False
    bad = FileIndexCache.for_source(tmp_path, kind="t", cache_dir=tmp_path / "c")
    bad.file.parent.mkdir()
    bad.file.write_bytes(b"garbage")
    assert len(FileIndexCache(bad.file)) == 0


def test_same_paths_in_order_skip_the_index_and_reorders_still_match(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"{i}.bin") for i in range(5)]
    size, mtime = np.arange(5, dtype=np.int64), np.arange(5, dtype=np.int64) + 100
    cache = FileIndexCache.for_source(tmp_path, kind="t2", cache_dir=tmp_path / "c")
    cache.store(paths, size, mtime, ragged={"v": (np.arange(7), np.array([1, 0, 3, 2, 1]))})
    again = FileIndexCache.for_source(tmp_path, kind="t2", cache_dir=tmp_path / "c")
    rows, fresh = again.lookup(paths, size, mtime)
    assert rows.tolist() == [0, 1, 2, 3, 4] and fresh.all()
    vals, counts = again.ragged("v", rows)
    assert vals.tolist() == list(range(7)) and counts.tolist() == [1, 0, 3, 2, 1]
    rev = paths[::-1]
    rows, fresh = again.lookup(rev, size[::-1], mtime[::-1])
    assert rows.tolist() == [4, 3, 2, 1, 0] and fresh.all()
    vals, counts = again.ragged("v", rows)
    assert vals.tolist() == [6, 4, 5, 1, 2, 3, 0] and counts.tolist() == [1, 2, 3, 0, 1]
    rows, fresh = again.lookup([*paths[:4], "other"], size, mtime)
    assert rows.tolist() == [0, 1, 2, 3, -1] and fresh.tolist() == [True] * 4 + [False]
    assert again.paths == paths
