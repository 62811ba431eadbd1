"""The fast paths of the Darknet reader agree with the plain per-file rules they replace."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import numpy as np
import pytest

from detforge.errors import DetforgeError
from detforge.formats.darknet import index as darknet_index
from detforge.formats.darknet import read_darknet
from detforge.formats.darknet.files import read_image_list_entries
from detforge.formats.darknet.index import read_files, stat_images
from detforge.formats.darknet.labels import (
    find_label_path,
    parse_label_files,
    parse_label_text,
)
from detforge.utils import filestat


def _touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _layout(root: Path) -> list[str]:
    """Images whose labels are found by each rule, negatives in every folder (more than the
    misses that make a folder listed), a folder named like the label of a missing image, a
    dotted name."""
    images = []
    for i in range(90):
        a = _touch(root / "same" / f"a{i}.jpg")  # rule 1 for even i, negatives otherwise
        if i % 2 == 0:
            _touch(a.with_suffix(".txt"), b"0 0.5 0.5 0.1 0.1\n")
        b = _touch(root / "voc" / "JPEGImages" / f"b{i}.jpg")  # rule 2 for i % 3 == 0
        if i % 3 == 0:
            _touch(root / "voc" / "labels" / f"b{i}.txt", b"1 0.5 0.5 0.1 0.1\n")
        c = _touch(root / "u" / "images" / "train" / f"c.{i}.png")  # rule 3 for i % 4 == 0
        if i % 4 == 0:
            _touch(root / "u" / "labels" / "train" / f"c.{i}.txt", b"")
        images += [str(a), str(b), str(c)]
    (root / "same" / "ghost.txt").mkdir()  # of the missing ghost.jpg: not looked at
    images.append(str(_touch(root / "same" / "dir.jpg")))
    images.append(str(_touch(root / "same" / ".hidden")))
    _touch(root / "same" / ".hidden.txt")
    images.append(str(root / "same" / "ghost.jpg"))  # missing image, no label
    return images


def test_stat_pass_finds_the_same_labels_as_the_candidate_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_backend: str
) -> None:
    images = _layout(tmp_path)
    random.Random(0).shuffle(images)
    listed: list[str] = []
    real = darknet_index._exact_listing

    def spy(folder: str) -> frozenset[str] | None:
        listed.append(folder)
        return real(folder)

    monkeypatch.setattr(darknet_index, "_exact_listing", spy)
    got = stat_images(images, workers=1)
    # listed, once each: the folders whose first candidates all missed (labels kept in another
    # tree), then the folders of many negatives' candidates (a folder or FIFO named like a
    # label file is an error, not a negative); folders with labels among their first
    # candidates are stat-ed, negatives and all
    assert sorted(listed) == [
        str(tmp_path / "same") + "/",
        str(tmp_path / "u" / "images" / "train") + "/",
        str(tmp_path / "u" / "labels" / "train") + "/",
        str(tmp_path / "voc" / "JPEGImages") + "/",
        str(tmp_path / "voc" / "labels") + "/",
    ]
    expect = [find_label_path(p) or "" for p in images]
    assert got.label_paths == expect
    assert sum(map(bool, expect)) == 45 + 30 + 23 + 1
    assert got.label_rule.tolist() == [
        0 if not lp else 1 if "/same/" in lp else 2 if "/voc/" in lp else 3 for lp in expect
    ]
    for i, p in enumerate(images):
        st = os.stat(p) if os.path.exists(p) else None
        assert got.size[i] == (st.st_size if st else -1)
        assert got.mtime_ns[i] == (st.st_mtime_ns if st else -1)
        if expect[i]:
            assert got.label_size[i] == os.stat(expect[i]).st_size
    threaded = stat_images(images, workers=3)
    assert threaded.label_paths == got.label_paths
    assert np.array_equal(threaded.label_mtime_ns, got.label_mtime_ns)


def test_a_label_appearing_in_a_listed_folder_is_seen(tmp_path: Path, stat_backend: str) -> None:
    images = [str(_touch(tmp_path / "d" / f"{i}.jpg")) for i in range(100)]
    assert stat_images(images, workers=1).label_paths == [""] * 100
    _touch(tmp_path / "d" / "99.txt")
    assert stat_images(images, workers=1).label_paths[99] == str(tmp_path / "d" / "99.txt")


def test_listings_are_not_trusted_on_case_insensitive_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _touch(tmp_path / "Abc")
    assert darknet_index._exact_listing(str(tmp_path) + "/") == frozenset({"Abc"})
    real = os.lstat

    def insensitive(p: str) -> os.stat_result:
        return real(p if not p.endswith("aBC") else p[:-3] + "Abc")

    monkeypatch.setattr(os, "lstat", insensitive)
    assert darknet_index._exact_listing(str(tmp_path) + "/") is None
    assert darknet_index._exact_listing(str(tmp_path / "nope") + "/") == frozenset()


def test_cache_notices_a_label_that_moved_to_another_rule(tmp_path: Path) -> None:
    img = _touch(tmp_path / "images" / "a.jpg", b"\xff\xd8")
    same = _touch(tmp_path / "images" / "a.txt", b"0 0.5 0.5 0.1 0.1\n")
    os.utime(same, ns=(7, 7))
    lst = tmp_path / "list.txt"
    lst.write_text(f"{img}\n")
    cache = tmp_path / "cache"
    first = read_darknet(lst, cache_dir=cache, read_sizes=False)
    assert first.boxes.cls.tolist() == [0]
    other = _touch(tmp_path / "labels" / "a.txt", b"1 0.5 0.5 0.1 0.1\n")  # same size
    os.utime(other, ns=(7, 7))
    same.unlink()
    again = read_darknet(lst, cache_dir=cache, read_sizes=False)
    assert again.meta["label_paths"] == [str(other)]
    assert again.boxes.cls.tolist() == [1]


_UNREADABLE_LABELS = {
    "folder": lambda p: p.mkdir(),
    "fifo": lambda p: os.mkfifo(p),
    "self-link": lambda p: p.symlink_to(p.name),  # ln -s a0.txt a0.txt
    "dangling-link": lambda p: p.symlink_to("nowhere.txt"),
}


@pytest.mark.parametrize("many", [False, True], ids=["stat", "listing"])
@pytest.mark.parametrize("kind", list(_UNREADABLE_LABELS))
def test_a_label_file_that_cannot_be_read_is_an_error_not_a_negative(
    tmp_path: Path, stat_backend: str, kind: str, many: bool
) -> None:
    # many: enough negatives beside it that their folder is listed instead of lstat-ed
    n = 80 if many else 3
    images = [_touch(tmp_path / "img" / f"a{i}.jpg", b"\xff\xd8") for i in range(n)]
    _touch(tmp_path / "img" / "a1.txt", b"0 0.5 0.5 0.1 0.1\n")
    label = tmp_path / "img" / "a0.txt"
    _UNREADABLE_LABELS[kind](label)
    lst = tmp_path / "train.txt"
    lst.write_text("".join(f"img/{p.name}\n" for p in images))
    got: list[BaseException] = []

    def read() -> None:
        try:
            read_darknet(lst, cache_dir=tmp_path / "cache", read_sizes=False)
        except BaseException as exc:  # handed to the test thread
            got.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "a FIFO named like a label file blocked the read"
    assert len(got) == 1 and isinstance(got[0], DetforgeError), got
    err = got[0]
    assert err.path == str(label) and "cannot read label file" in str(err)
    assert "\n" not in str(err)
    if kind == "folder":  # gone: a plain negative again
        label.rmdir()
    else:
        label.unlink()
    ds = read_darknet(lst, cache_dir=tmp_path / "cache", read_sizes=False)
    assert ds.meta["no_label_file"] == n - 1 and ds.num_boxes == 1


_PLAIN_FILES = [
    b"0 0.5 0.5 0.1 0.1\n",
    b"",
    b"\n\n",
    b"  +3\t.5 1. 1e-3 -0.25  \r\n\r\n2 1 2 3 4",
    b"-0 0 0 0 0\r",
    b"007 1E+2 +.5 0.1 0.2\n\n",
    b"12 0.123456789012345678 0.5 0.5 0.5",
]
_OTHER_FILES = [
    b"\xef\xbb\xbf1 0.1 0.2 0.3 0.4\n",  # BOM
    b"1 0.1 0.2 0.3 0.4\x0c\n",  # form feed
]


def test_bulk_label_parse_matches_parse_label_text() -> None:
    rng = random.Random(1)
    blobs = [*_PLAIN_FILES, *_OTHER_FILES]
    for _ in range(200):
        k = rng.randint(0, 4)
        lines = [
            f"{rng.randint(0, 80)} "
            + " ".join(rng.choice(["%.6f", "%r", "%.3e", "%g"]) % rng.random() for _ in range(4))
            for _ in range(k)
        ]
        blobs.append(("\n".join(lines) + rng.choice(["", "\n", "\r\n"])).encode())
    rng.shuffle(blobs)
    for subset in (blobs, [b for b in blobs if b not in _OTHER_FILES]):
        cls, xy, counts = parse_label_files(subset, [f"f{i}" for i in range(len(subset))])
        ref = [parse_label_text(b.decode("utf-8", "replace")) for b in subset]
        assert counts.tolist() == [len(c) for c, _ in ref]
        assert np.array_equal(cls, np.concatenate([c for c, _ in ref]))
        ref_xy = np.concatenate([x for _, x in ref])
        assert np.array_equal(xy.view(np.int64), ref_xy.view(np.int64))  # bit for bit


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        (b"0 1e400 0 0 0\n", "finite"),
        (b"0 0 0 0\n", "expected 5 values"),
        (b"0.5 0 0 0 0\n", "whole number"),
        (b"0 nan 0 0 0\n", "finite"),
        # float() and int() take these, Darknet (strtod) and detforge check do not
        (b"0 0.5 0.5 0.1_0 0.1\n", "must be numbers"),
        (b"1_0 0.5 0.5 0.1 0.1\n", "whole number"),
        ("\uff10 0.5 0.5 0.1 0.1\n".encode(), r"non-ASCII character '\uff10' \(U\+FF10\)"),
        ("0\u00a00.5 0.5 0.1 0.1\n".encode(), r"non-ASCII character .* \(U\+00A0\)"),  # no-break
        ("0 0.5 0.5 0.1 0.1\u00a0\n".encode(), r"\(U\+00A0\) in '0 0.5 0.5 0.1 0.1\\xa0'"),
    ],
)
def test_bulk_label_parse_errors_name_the_file_and_line(bad: bytes, needle: str) -> None:
    with pytest.raises(DetforgeError, match=needle) as err:
        parse_label_files([_PLAIN_FILES[0], b"\n" + bad], ["good.txt", "bad.txt"])
    assert err.value.path is not None and str(err.value.path) == "bad.txt"
    assert err.value.line == 2


def test_read_files_returns_whole_files_and_names_unreadable_ones(tmp_path: Path) -> None:
    paths = [str(_touch(tmp_path / f"{i}.txt", b"ab" * i)) for i in range(300)]
    sizes = [2 * i for i in range(300)]
    sizes[5] = 0  # stale size hint: the file is read to its end anyway
    for w in (None, 1, 4):
        assert read_files(paths, sizes, workers=w) == [b"ab" * i for i in range(300)]
    with pytest.raises(DetforgeError, match="cannot read label file") as err:
        read_files([paths[0], str(tmp_path / "gone.txt"), paths[1]], [0, 0, 2], workers=2)
    assert str(err.value.path).endswith("gone.txt")


@pytest.mark.parametrize(
    "text",
    [
        "a.jpg\nsub/b.jpg\n/abs/c.jpg\n",
        "a.jpg\n\n# comment\n  sub/b.jpg  \n",
        "./a.jpg\n../b.jpg\nx//y.jpg\n.\n",
        "C:/data/a.jpg\nd\\e.jpg\n",
        "ü/ä.jpg\r\nb.jpg",
    ],
)
def test_list_fast_path_matches_the_general_resolver(tmp_path: Path, text: str) -> None:
    lst = tmp_path / "list.txt"
    lst.write_text(text, encoding="utf-8", newline="")
    fast = read_image_list_entries(lst)
    general = read_image_list_entries(lst, path_map=[("/no/such/prefix", "/else")])
    assert fast == general


def test_bare_relative_names_use_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path / "x.jpg")
    _touch(tmp_path / "x.txt", b"0 0.5 0.5 0.1 0.1\n")
    _touch(tmp_path / "sub" / "x.jpg")
    got = stat_images(["x.jpg", "sub/x.jpg", str(tmp_path / "x.jpg")], workers=1)
    assert got.label_paths == ["x.txt", "", str(tmp_path / "x.txt")]
    assert got.size.tolist() == [1, 1, 1]


def test_threads_only_for_slow_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(darknet_index, "usable_cores", lambda: 8)
    assert darknet_index.use_threads(0.001, 256, 100e-6) == 1  # 4 µs a file: warm, local
    assert darknet_index.use_threads(0.5, 256, 100e-6) == 32  # 2 ms a file: remote
    monkeypatch.setattr(darknet_index, "usable_cores", lambda: 1)
    assert darknet_index.use_threads(0.5, 256, 100e-6) == 1


def test_probe_then_threads_keeps_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_backend: str
) -> None:
    images = _layout(tmp_path)
    serial = stat_images(images, workers=1)
    labels = [p for p in serial.label_paths if p]
    sizes = [os.stat(p).st_size for p in labels]
    expect = read_files(labels, sizes, workers=1)
    # pretend the first files were slow: the rest then goes to threads
    monkeypatch.setattr(darknet_index, "usable_cores", lambda: 4)
    monkeypatch.setattr(filestat, "usable_cores", lambda: 4)
    monkeypatch.setattr(filestat, "_SLOW_STAT_S", -1.0)
    monkeypatch.setattr(filestat, "_PROBE", 7)
    monkeypatch.setattr(filestat, "_MIN_CHUNK", 8)
    monkeypatch.setattr(darknet_index, "_SLOW_READ_S", -1.0)
    monkeypatch.setattr(darknet_index, "_PROBE_READS", 5)
    probed = stat_images(images)
    assert probed.label_paths == serial.label_paths
    assert np.array_equal(probed.size, serial.size)
    assert np.array_equal(probed.label_rule, serial.label_rule)
    assert read_files(labels, sizes) == expect
