"""The index cache keys on the ctime too: a same-size edit with the mtime set back is stale, and
a table of the older layout (no ctimes) is never read as fresh."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest

from detforge.data.cache import CACHE_VERSION, FileIndexCache
from detforge.formats.darknet.index import FileStats, stat_images
from detforge.utils.filestat import stat_many


def _edit_keeping_size_and_mtime(path: Path, text: str) -> None:
    before = os.stat(path)
    time.sleep(0.05)  # past the file system's timestamp tick
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )


@pytest.mark.usefixtures("stat_backend")
def test_lookup_with_ctimes_sees_an_edit_the_mtime_hides(tmp_path: Path) -> None:
    files = [tmp_path / f"{i}.txt" for i in range(3)]
    for f in files:
        f.write_text("0 0.5 0.5 0.2 0.2\n")
    paths = [str(f) for f in files]
    cache = FileIndexCache.for_source(tmp_path, kind="t", cache_dir=tmp_path / "c")
    assert f"-v{CACHE_VERSION}-" in cache.file.name and CACHE_VERSION >= 2
    cache.store(paths, *stat_many(paths, ctime=True), columns={"x": np.arange(3)})
    again = FileIndexCache.for_source(tmp_path, kind="t", cache_dir=tmp_path / "c")
    assert again.lookup(paths, *stat_many(paths, ctime=True))[1].tolist() == [True] * 3
    _edit_keeping_size_and_mtime(files[1], "1 0.5 0.5 0.2 0.2\n")
    stamps = stat_many(paths, ctime=True)
    rows, fresh = again.lookup(paths, *stamps)
    assert rows.tolist() == [0, 1, 2] and fresh.tolist() == [True, False, True]
    # size and mtime alone cannot tell (why every caller passes the ctimes)
    assert again.lookup(paths, stamps[0], stamps[1])[1].tolist() == [True] * 3


def test_records_stored_without_ctimes_are_never_fresh_for_a_lookup_with(tmp_path: Path) -> None:
    paths = ["a", "b"]
    size, mtime, ctime = (np.array([1, 2]), np.array([10, 20]), np.array([100, 200]))
    cache = FileIndexCache.for_source(tmp_path, kind="t", cache_dir=tmp_path / "c")
    cache.store(paths, size, mtime)  # no ctimes: stored as -1
    again = FileIndexCache.for_source(tmp_path, kind="t", cache_dir=tmp_path / "c")
    assert again.ctime_ns.tolist() == [-1, -1]
    assert again.lookup(paths, size, mtime, ctime)[1].tolist() == [False, False]
    assert again.lookup(paths, size, mtime, np.array([-1, -1]))[1].tolist() == [False, False]
    with pytest.raises(ValueError, match="ctime"):
        cache.store(paths, size, mtime, ctime[:1])


def test_a_table_of_the_older_layout_is_rebuilt_not_read(tmp_path: Path) -> None:
    """A table without ``__ctime__`` (the layout of version 1) put where this version's is:
    treated as damaged, so empty, and rebuilt by the next store -- never read as fresh."""
    cache = FileIndexCache.for_source(tmp_path, kind="t", cache_dir=tmp_path / "c")
    buf = io.BytesIO()
    np.savez(
        buf,
        __n__=np.asarray(1, dtype=np.int64),
        __paths__=np.frombuffer(b"a", dtype=np.uint8),
        __size__=np.array([1]),
        __mtime__=np.array([10]),
    )
    cache.file.parent.mkdir(parents=True)
    cache.file.write_bytes(buf.getvalue())
    old = FileIndexCache(cache.file)
    assert len(old) == 0 and old.damaged is not None and "rebuilt" in old.damaged
    assert old.lookup(["a"], np.array([1]), np.array([10]))[1].tolist() == [False]


@pytest.mark.usefixtures("stat_backend")
def test_stat_images_gives_the_ctimes_of_images_and_labels(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for stem in ("a", "b"):
        (tmp_path / "images" / f"{stem}.jpg").write_bytes(b"jpeg" * 10)
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # the images/ rule
    paths = [str(tmp_path / "images" / s) for s in ("a.jpg", "b.jpg", "gone.jpg")]
    st = stat_images(paths)
    assert st.ctime_ns.tolist() == [
        os.stat(paths[0]).st_ctime_ns,
        os.stat(paths[1]).st_ctime_ns,
        -1,
    ]
    assert st.label_paths == [str(tmp_path / "labels" / "a.txt"), "", ""]
    assert st.label_ctime_ns.tolist() == [os.stat(st.label_paths[0]).st_ctime_ns, -1, -1]


def test_file_stats_made_without_ctimes_match_no_record() -> None:
    one = np.array([5], dtype=np.int64)
    st = FileStats(
        size=one,
        mtime_ns=one,
        label_paths=[""],
        label_rule=np.zeros(1, dtype=np.int8),
        label_size=one,
        label_mtime_ns=one,
    )
    assert st.ctime_ns.tolist() == [-1] and st.label_ctime_ns.tolist() == [-1]
    with pytest.raises(ValueError, match="ctime_ns"):
        FileStats(
            size=one,
            mtime_ns=one,
            label_paths=[""],
            label_rule=np.zeros(1, dtype=np.int8),
            label_size=one,
            label_mtime_ns=one,
            ctime_ns=np.array([1, 2]),
        )
