"""stat_many agrees with os.stat on every kind of path, with and without the C helper."""

from __future__ import annotations

import os
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from detforge.utils import filestat
from detforge.utils.filestat import stat_many


def _expected(paths: list[str]) -> tuple[list[int], list[int]]:
    size, mtime, _ = _expected_stamps(paths)
    return size, mtime


def _expected_stamps(paths: list[str]) -> tuple[list[int], list[int], list[int]]:
    size, mtime, ctime = [], [], []
    for p in paths:
        try:
            s = os.stat(p)
        except (OSError, ValueError):
            size.append(-1)
            mtime.append(-1)
            ctime.append(-1)
            continue
        regular = s.st_mode & 0o170000 == 0o100000
        size.append(s.st_size if regular else -1)
        mtime.append(s.st_mtime_ns if regular else -1)
        ctime.append(s.st_ctime_ns if regular else -1)
    return size, mtime, ctime


def _odd_paths(root: Path) -> list[str]:
    """Files, a folder, symlinks (good and broken), a FIFO, a non-UTF-8 name, a missing
    file, an empty path, a relative one and one with a NUL."""
    (root / "d").mkdir()
    files = []
    for i in range(5):
        f = root / f"f{i}.txt"
        f.write_bytes(b"x" * (i * 7))
        os.utime(f, ns=(1, 1_700_000_000_123_456_789 + i))
        files.append(str(f))
    (root / "link").symlink_to(root / "f3.txt")
    (root / "broken").symlink_to(root / "nowhere")
    os.mkfifo(root / "fifo")
    odd = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 byte: a surrogate-escaped str
    (root / odd).write_bytes(b"abc")
    (root / "ünïcode.txt").write_bytes(b"u")
    return [
        *files,
        str(root / "d"),
        str(root / "link"),
        str(root / "broken"),
        str(root / "fifo"),
        str(root / odd),
        str(root / "ünïcode.txt"),
        str(root / "missing.txt"),
        str(root / ("x" * 300)),  # a name too long for the file system
        "/" + "d/" * 3000 + "f",  # a path longer than PATH_MAX
        "",
        "f1.txt",  # relative: the working directory
        str(root / "f1.txt") + "\0tail",
    ]


def test_agrees_with_os_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_backend: str
) -> None:
    monkeypatch.chdir(tmp_path)
    paths = _odd_paths(tmp_path)
    size, mtime = stat_many(paths, threads=1)
    assert size.dtype == np.int64 and mtime.dtype == np.int64
    assert (size.tolist(), mtime.tolist()) == _expected(paths)
    assert mtime[3] == 1_700_000_000_123_456_789 + 3  # nanoseconds kept exactly
    assert size[paths.index(str(tmp_path / "link"))] == 21  # symlinks are followed
    assert size[-1] == -1 and size[-2] == 7  # NUL: rejected, as os.stat does; relative: found


def test_with_ctime_agrees_with_os_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_backend: str
) -> None:
    """``ctime=True`` adds ``st_ctime_ns``: the C helper and the ``os.stat`` loop agree."""
    monkeypatch.chdir(tmp_path)
    paths = _odd_paths(tmp_path)
    got = stat_many(paths, threads=1, ctime=True)
    assert len(got) == 3 and all(a.dtype == np.int64 for a in got)
    assert tuple(a.tolist() for a in got) == _expected_stamps(paths)
    assert (got[2][:5] > 1_700_000_000_123_456_789 + 4).all()  # not the mtime set by utime
    assert [len(a) for a in stat_many([], ctime=True)] == [0, 0, 0]
    # on threads (and past the probe), in order
    many = paths * 40
    random.Random(2).shuffle(many)
    monkeypatch.setattr(filestat, "_MIN_CHUNK", 16)
    monkeypatch.setattr(filestat, "_PROBE", 9)
    monkeypatch.setattr(filestat, "_SLOW_STAT_S", -1.0)
    assert tuple(a.tolist() for a in stat_many(many, ctime=True)) == _expected_stamps(many)


def test_ctime_sees_a_same_size_edit_with_the_mtime_set_back(
    tmp_path: Path, stat_backend: str
) -> None:
    f = tmp_path / "a.txt"
    f.write_text("0 0.5 0.5 0.2 0.2\n")
    before = os.stat(f)
    time.sleep(0.02)  # past the file system's timestamp tick
    f.write_text("0 0.4 0.5 0.2 0.2\n")
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -d
    size, mtime, ctime = stat_many([str(f)], ctime=True)
    assert (size[0], mtime[0]) == (before.st_size, before.st_mtime_ns)  # these cannot tell
    assert ctime[0] != before.st_ctime_ns


def test_threads_and_probe_keep_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_backend: str
) -> None:
    paths = _odd_paths(tmp_path) * 40
    random.Random(1).shuffle(paths)
    monkeypatch.chdir(tmp_path)
    expect = _expected(paths)
    monkeypatch.setattr(filestat, "_MIN_CHUNK", 16)
    for threads in (1, 3, 8):
        size, mtime = stat_many(paths, threads=threads)
        assert (size.tolist(), mtime.tolist()) == expect
    # by default: a probe in this thread, then the rest on threads (here: "slow storage")
    monkeypatch.setattr(filestat, "_PROBE", 9)
    monkeypatch.setattr(filestat, "_SLOW_STAT_S", -1.0)
    size, mtime = stat_many(paths)
    assert (size.tolist(), mtime.tolist()) == expect


def test_empty_and_non_str_paths(tmp_path: Path, stat_backend: str) -> None:
    size, mtime = stat_many([])
    assert size.shape == (0,) and mtime.shape == (0,)
    (tmp_path / "a").write_bytes(b"12")
    assert stat_many([tmp_path / "a"])[0].tolist() == [2]  # type: ignore[list-item]


def test_native_helper_checks_its_arguments() -> None:
    if not filestat.native_available():
        pytest.skip("detforge.utils._cstat was not built (no C compiler at install time)")
    from detforge.utils import _cstat

    out = np.zeros(2, dtype=np.int64)
    with pytest.raises(ValueError, match="NUL"):
        _cstat.stat_paths(b"a\0b", 2, out, out.copy())
    with pytest.raises(ValueError, match="not 2"):
        _cstat.stat_paths(b"a\0", 2, out, out.copy())
    with pytest.raises(ValueError, match="int64"):
        _cstat.stat_paths(b"a\0", 1, np.zeros(1, dtype=np.int32), out)
    with pytest.raises(ValueError, match="int64"):
        _cstat.stat_paths(b"a\0b\0", 2, np.zeros(1, dtype=np.int64), out)
    with pytest.raises(TypeError):
        _cstat.stat_paths(b"a\0", 1, b"readonly", out)
    with pytest.raises(ValueError, match="ctime_out"):
        _cstat.stat_paths(b"a\0b\0", 2, out, out.copy(), np.zeros(1, dtype=np.int64))
    with pytest.raises(TypeError):
        _cstat.stat_paths(b"a\0", 1, out, out.copy(), b"readonly")


def test_a_helper_built_from_older_source_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``_cstat`` built before ``ctime_out`` existed (a stale build in a checkout) would
    raise on every ctime stat: it is left out, and ``os.stat`` answers."""
    import detforge.utils

    old = types.ModuleType("detforge.utils._cstat")

    def stat_paths(blob: bytes, n: int, size_out: object, mtime_out: object) -> int:
        return 0

    old.stat_paths = stat_paths  # type: ignore[attr-defined]
    monkeypatch.setattr(detforge.utils, "_cstat", old, raising=False)
    monkeypatch.setitem(sys.modules, "detforge.utils._cstat", old)
    assert filestat._load_native() is None


def test_forcing_the_missing_helper_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filestat, "_NATIVE", None)
    with pytest.raises(RuntimeError, match="not built"):
        stat_many(["x"], native=True)
    assert stat_many(["/no/such/file"], native=False)[0].tolist() == [-1]


def test_read_many_reads_whole_files_or_leaves_them_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not filestat.native_available():
        pytest.skip("detforge.utils._cstat was not built (no C compiler at install time)")
    files = []
    for i, n in enumerate([0, 1, 37, 5000, 70_000]):
        f = tmp_path / f"{i}.txt"
        f.write_bytes(bytes(range(256)) * (n // 256) + b"x" * (n % 256))
        files.append(str(f))
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "fifo")
    grown = tmp_path / "grown.txt"
    grown.write_bytes(b"0123456789")
    long = "/" + "d/" * 3000 + "f"  # longer than PATH_MAX
    paths = [*files, str(tmp_path / "d"), str(tmp_path / "fifo"), str(grown), "/no/such", long]
    sizes = [os.stat(p).st_size for p in files] + [0, 0, 4, 0, 0]  # grown: stat said 4
    monkeypatch.setattr(filestat, "_MIN_READ_CHUNK", 2)  # let 3 threads share 9 files
    for threads in (1, 3):
        out = filestat.read_many(paths, sizes, threads=threads)
        assert out[:5] == [Path(p).read_bytes() for p in files]
        assert out[5] is None  # a folder: the caller's own read raises the clear error
        assert out[6] in (None, b"")  # a FIFO: never a hang
        assert out[7] is None  # longer than the stat said: the caller reads it again
        assert out[8] is None and out[9] is None


def test_read_heads_gives_prefixes_and_notices_growth(tmp_path: Path) -> None:
    if not filestat.native_available():
        pytest.skip("detforge.utils._cstat was not built (no C compiler at install time)")
    big, small, grown = tmp_path / "big", tmp_path / "small", tmp_path / "grown"
    big.write_bytes(bytes(range(200)) * 30)
    small.write_bytes(b"abc")
    grown.write_bytes(b"0123456789")
    paths = [str(big), str(small), str(grown), str(tmp_path / "gone")]
    assert filestat.read_heads(paths, 16) == [bytes(range(16)), b"abc", b"0123456789"[:16], None]
    # with the sizes a stat gave: small files get small slots; one that grew since is None
    got = filestat.read_heads(paths, 16, sizes=[6000, 3, 4, 0])
    assert got == [bytes(range(16)), b"abc", None, None]


def test_an_interrupt_cancels_the_calls_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during a long pass returns after the calls already running, not all of them."""
    calls: list[tuple[int, int]] = []

    def run(lo: int, hi: int) -> None:  # a call over slow storage
        calls.append((lo, hi))
        if len(calls) == 3:
            raise KeyboardInterrupt
        time.sleep(0.005)

    monkeypatch.setattr(filestat, "_MAX_CALL", 10)
    with pytest.raises(KeyboardInterrupt):
        filestat._in_chunks(
            10_000, run, threads=2, fast_threads=2, probe=0, slow_s=1.0, min_chunk=1
        )
    assert len(calls) < 50  # of 1,000 calls
    # one thread: the same bounded calls, in order
    calls.clear()
    filestat._in_chunks(
        95, lambda lo, hi: calls.append((lo, hi)), threads=1, fast_threads=1, probe=0,
        slow_s=1.0, min_chunk=1,
    )  # fmt: skip
    assert calls == [(lo, min(95, lo + 10)) for lo in range(0, 95, 10)]
