"""Hostile paths and symbolic links, and output folders that must be refused.

An image folder is seeded with every kind of hostile entry (a link to itself, a loop of two
links, a dangling link, a link to a folder outside, names with spaces, non-ASCII, non-UTF-8
bytes, a leading dash, 255 bytes, a folder named like an image, a FIFO named like an
image); ``info``, ``check``, ``lists``, ``split`` and ``convert`` (every target) end in a
correct result or one error line, the folder unchanged. Every hostile OUT is refused in one
line without touching anything. Lists with one non-UTF-8 line keep their UTF-8 lines, and
VOC image ids with spaces survive a round trip.
"""

from __future__ import annotations

import os
from pathlib import Path

from detforge.formats.darknet import read_darknet
from detforge.formats.detect import FORMATS, read_any
from tests.reliability.builders import darknet_project, jpeg
from tests.reliability.harness import (
    SourceGuard,
    assert_clean_outcome,
    assert_labels_finite,
    run_cli,
)

TARGETS = FORMATS  # every convert target


def hostile_entries(folder: Path, outside: Path) -> list[str]:
    """Add one hostile entry of each kind to ``folder``; returns their kinds."""
    kinds = []

    def add(kind: str, make: object) -> None:
        try:
            make()  # type: ignore[operator]
            kinds.append(kind)
        except OSError:  # the file system refuses this name: nothing to test
            pass

    add("self-link", lambda: os.symlink("x.jpg", folder / "x.jpg"))
    add(
        "loop",
        lambda: (os.symlink("l2.jpg", folder / "l1.jpg"), os.symlink("l1.jpg", folder / "l2.jpg")),
    )
    add("dangling", lambda: os.symlink("nowhere.jpg", folder / "dangling.jpg"))
    add("dir-link", lambda: os.symlink(outside, folder / "outside"))
    add("spaces", lambda: jpeg(folder / "my image 1.jpg"))
    add("unicode", lambda: jpeg(folder / "\u00e9t\u00e9 \u2603.jpg"))
    add("non-utf8", lambda: jpeg(Path(os.fsdecode(bytes(folder) + b"/caf\xe9.jpg"))))
    add("dash", lambda: jpeg(folder / "-rf.jpg"))
    add("long", lambda: jpeg(folder / ("n" * 251 + ".jpg")))
    add("dir-named-jpg", lambda: (folder / "folder.jpg").mkdir())
    add("fifo", lambda: os.mkfifo(folder / "pipe.jpg"))
    add("upper", lambda: jpeg(folder / "UPPER.JPG"))
    for p in folder.glob("*.jp*g"):
        if p.is_file() and not p.is_symlink():
            p.with_suffix(".txt").write_text("0 0.5 0.5 0.25 0.25\n")
    return kinds


def test_hostile_entries_in_an_image_folder(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    jpeg(outside / "o.jpg")
    data = darknet_project(tmp_path / "proj", n=3)
    folder = data.parent.parent / "data"
    kinds = hostile_entries(folder, outside)
    assert len(kinds) >= 10, kinds
    runs = 0
    for i, to in enumerate(TARGETS):
        out = tmp_path / f"out{i}"
        guard = SourceGuard(tmp_path, out=out)
        for argv in (
            ["info", str(folder)],
            ["check", str(folder), "--no-cache"],
            ["lists", str(folder), "--output", "-"],
            ["convert", str(folder), str(out), "--to", to],
        ):
            o = run_cli(argv)
            assert_clean_outcome(o, allowed=(0, 1, 2) if argv[0] == "check" else (0, 2))
            runs += 1
        if out.exists():
            assert_labels_finite(out)
        guard.check(to)
    split = tmp_path / "split"
    guard = SourceGuard(tmp_path, out=split)
    o = run_cli(["split", str(folder), "--out", str(split)])
    assert_clean_outcome(o, allowed=(0, 2))
    guard.check("split")
    print(f"hostile entries: {len(kinds)} kinds, {runs + 1} command runs")


def test_hostile_output_folders_are_refused(tmp_path: Path) -> None:
    data = darknet_project(tmp_path / "proj")
    src = data.parent.parent / "data"
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    (tmp_path / "link-to-src").symlink_to(src)
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    outs = {  # what -> (OUT, the source given to convert/check)
        "existing file": (afile, data),
        "under a file": (afile / "out", data),
        "the image folder": (src, data),
        "the project holding the images": (tmp_path / "proj", data),
        "a link to the image folder": (tmp_path / "link-to-src", data),
        "a dangling link": (tmp_path / "dangling", data),
        "the .data folder": (data.parent, data),
        "inside the image folder read as a folder": (src / "sub", src),
        "the filesystem root": (Path("/"), data),
    }
    guard = SourceGuard(tmp_path)
    cases = 0
    for what, (out, source) in outs.items():
        for argv in (
            ["convert", str(source), str(out), "--to", "ultralytics"],
            ["convert", str(source), str(out), "--to", "voc", "--overwrite"],
            ["check", str(source), "--fix", str(out), "--overwrite"],
            ["split", str(src), "--out", str(out), "--overwrite"],
        ):
            o = run_cli(argv)
            assert_clean_outcome(o, allowed=(2,))
            cases += 1
        guard.check(what)
    assert cases == 4 * len(outs)


def test_list_with_one_non_utf8_line_keeps_the_others(tmp_path: Path) -> None:
    good = jpeg(tmp_path / "d" / "\u00e9t\u00e9.jpg")
    good.with_suffix(".txt").write_text("0 0.5 0.5 0.2 0.2\n")
    raw = jpeg(Path(os.fsdecode(bytes(tmp_path / "d") + b"/caf\xe9.jpg")))  # a Latin-1 name
    listed = tmp_path / "list.txt"
    listed.write_bytes(bytes(good) + b"\n" + bytes(raw) + b"\n")
    ds = read_darknet(listed)
    # the UTF-8 line reads as UTF-8 (not Latin-1), the other as the exact bytes it names
    assert ds.images.path.tolist() == [str(good), str(raw)]
    out = tmp_path / "out"
    assert run_cli(["convert", str(listed), str(out), "--to", "darknet"]).rc == 0
    assert (out / "train.txt").read_bytes().count(b"caf\xe9.jpg") == 1
    o = run_cli(["convert", str(listed), str(tmp_path / "coco"), "--to", "coco"])
    assert_clean_outcome(o, allowed=(2,))
    assert "not UTF-8" in o.err
    names = tmp_path / "obj.names"
    names.write_bytes(b"cat\ncaf\xe9\n")
    o = run_cli(["convert", str(listed), str(tmp_path / "o2"), "--to", "darknet"])
    (tmp_path / "obj.data").write_text(f"classes = 2\ntrain = {listed}\nnames = {names}\n")
    o = run_cli(["info", str(tmp_path / "obj.data")])
    assert_clean_outcome(o, allowed=(2,))
    assert f"{names}:2:" in o.err and "not UTF-8" in o.err


def test_voc_ids_with_spaces_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i, name in enumerate(["my image 1", "second one", "plain"]):
        jpeg(src / f"{name}.jpg", color=40 * i)
        (src / f"{name}.txt").write_text(f"{i % 2} 0.5 0.5 0.25 0.125\n")
    (src / "classes.txt").write_text("cat\ndog\n")
    assert run_cli(["convert", str(src), str(tmp_path / "voc"), "--to", "voc"]).rc == 0
    voc = read_any(tmp_path / "voc")
    assert sorted(Path(p).stem for p in voc.images.path) == ["my image 1", "plain", "second one"]
    assert voc.num_boxes == 3
    assert (
        run_cli(["convert", str(tmp_path / "voc"), str(tmp_path / "back"), "--to", "darknet"]).rc
        == 0
    )
    back = read_any(tmp_path / "back" / "obj.data")
    a = read_darknet(src)
    key = lambda d: sorted(  # noqa: E731
        (Path(str(p)).stem, int(c), *[round(v, 6) for v in xy])
        for p, c, xy in zip(
            d.images.path[d.boxes.image], d.boxes.cls, d.boxes.coords.tolist(), strict=True
        )
    )
    assert key(back) == key(a)


def test_lists_never_overwrite_their_input_and_print_names_as_bytes(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "d"
    raw = jpeg(Path(os.fsdecode(bytes(folder) + b"/caf\xe9.jpg")))
    jpeg(folder / "b.jpg")
    listed = tmp_path / "l.txt"
    listed.write_bytes(bytes(raw) + b"\n" + bytes(folder / "b.jpg") + b"\n")
    before = listed.read_bytes()
    o = run_cli(["lists", str(listed), "--every", "2", "--output", str(listed)])
    assert_clean_outcome(o, allowed=(2,))
    assert listed.read_bytes() == before
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-m", "detforge", "lists", str(folder), "--output", "-"],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    assert bytes(raw) + b"\n" in proc.stdout
