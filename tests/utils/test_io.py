from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.utils.io import atomic_open, atomic_path, atomic_write_text, place_file


def test_atomic_write_has_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert (tmp_path / "a.txt").read_text() == "x\n"


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write("new, half written")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("mode", ["link", "copy"])
def test_place_file_never_touches_source(tmp_path: Path, mode: str) -> None:
    src = tmp_path / "src.jpg"
    src.write_bytes(b"\xff\xd8data")
    dst = tmp_path / "out" / "dst.jpg"
    place_file(src, dst, mode)  # type: ignore[arg-type]
    assert dst.read_bytes() == b"\xff\xd8data"
    assert src.read_bytes() == b"\xff\xd8data"
    place_file(src, tmp_path / "none.jpg", "none")
    assert not (tmp_path / "none.jpg").exists()


def test_place_file_missing_source_names_it(tmp_path: Path) -> None:
    with pytest.raises(DetforgeError, match=r"missing\.jpg"):
        place_file(tmp_path / "missing.jpg", tmp_path / "x.jpg", "link")


def test_atomic_path_for_writers_that_take_a_name(tmp_path: Path) -> None:
    """A writer given a file name (torch.onnx.export) writes a temporary file: renamed into
    place on success; on an error removed, the old file kept, nothing left behind."""
    out = tmp_path / "model.onnx"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.onnx.")
        tmp.write_bytes(b"half")
        raise RuntimeError("verification failed")
    assert out.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [out]
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and sorted(tmp_path.iterdir()) == [out]


def test_folder_or_file_in_the_way_is_one_error(tmp_path: Path) -> None:
    """A folder where the file goes, or a file where a folder above it goes: a
    DetforgeError naming it, nothing written or removed (no temporary file left)."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("keep")
    with pytest.raises(DetforgeError, match="is a folder") as err:
        atomic_write_text(tmp_path / "dir", "x")
    assert err.value.path == str(tmp_path / "dir")
    for target in (tmp_path / "file" / "x.txt", tmp_path / "file" / "sub" / "x.txt"):
        with pytest.raises(DetforgeError, match="not a folder") as err:
            atomic_write_text(target, "x")
        assert err.value.path == str(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]
    assert not list((tmp_path / "dir").iterdir())


def test_a_write_error_is_also_an_oserror_for_best_effort_writers(tmp_path: Path) -> None:
    """A cache skips what it cannot write (``except OSError``); the user gets one line."""
    from detforge.errors import DetforgeError
    from detforge.utils.io import WriteError, atomic_open

    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError) as err, atomic_open(tmp_path / "file" / "sub" / "a.txt") as f:
        f.write("never")
    assert isinstance(err.value, WriteError) and isinstance(err.value, DetforgeError)
    assert str(err.value).startswith(str(tmp_path / "file"))
