from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from detforge.cli.main import main
from detforge.formats.darknet import read_darknet, read_data_file, read_image_list


def _clips(root: Path, clips: int = 12, frames: int = 5) -> list[Path]:
    out = []
    for c in range(clips):
        for f in range(frames):
            p = root / f"clip{c:02d}" / f"clip{c:02d}_frame{f:04d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (c, f, 7)).save(p)
            if f % 2 == 0:
                p.with_suffix(".txt").write_text(f"{c % 2} 0.5 0.5 0.25 0.25\n")
            out.append(p)
    (root / "obj.names").write_text("deer\nfox\n")
    return out


@pytest.mark.parametrize("group_by", ["parent", r"(clip\d+)_frame"])
def test_split_keeps_sequences_together(tmp_path: Path, group_by: str) -> None:
    imgs = _clips(tmp_path / "data")
    out = tmp_path / "split"
    argv = ["split", str(tmp_path / "data"), "--out", str(out), "--ratios", "0.6,0.2,0.2"]
    assert main([*argv, "--group-by", group_by, "--seed", "1"]) == 0
    df = read_data_file(out / "obj.data")
    assert df.classes == 2 and Path(str(df.backup)).is_dir() and Path(str(df.results)).is_dir()
    lists = {s: read_image_list(out / f"{s}.txt") for s in ("train", "valid", "test")}
    assert sorted(p for v in lists.values() for p in v) == sorted(str(p) for p in imgs)
    clips_in = {s: {Path(p).parent.name for p in v} for s, v in lists.items()}
    assert not (clips_in["train"] & clips_in["valid"]) and not (
        clips_in["train"] & clips_in["test"]
    )
    assert not (clips_in["valid"] & clips_in["test"])
    # whole clips of 5 frames: each split within one clip of its 36/12/12 target
    sizes = [len(lists[s]) for s in ("train", "valid", "test")]
    assert all(abs(n - t) < 5 for n, t in zip(sizes, (36, 12, 12), strict=True)), sizes
    ds = read_darknet(out / "obj.data", cache=False)
    assert ds.class_names == ("deer", "fox") and ds.num_boxes == 36
    again = tmp_path / "again"
    assert (
        main(
            [
                "split",
                str(tmp_path / "data"),
                "--out",
                str(again),
                "--ratios",
                "0.6,0.2,0.2",
                "--group-by",
                group_by,
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert (again / "valid.txt").read_text() == (out / "valid.txt").read_text()


def test_split_windows_list_crlf_and_leak_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "mnt" / "data"
    _clips(data, clips=1, frames=1)
    src = data / "clip00" / "clip00_frame0000.png"
    shutil.copy(src, data / "dup.png")  # byte-identical copy under another name
    lst = tmp_path / "train.txt"
    lst.write_bytes(b"G:\\data\\clip00\\clip00_frame0000.png\r\nG:/data/dup.png\r\n\r\n")
    out = tmp_path / "split"
    argv = [
        "split",
        str(lst),
        "--out",
        str(out),
        "--ratios",
        "0.5,0.5",
        "--names",
        str(data / "obj.names"),
    ]
    assert main([*argv, "--path-map", f"G:/data={data}"]) == 0
    text = capsys.readouterr().out
    assert "same content" in text and "WARNING: 1 file(s)" in text
    assert main([*argv, "--path-map", f"G:/data={data}", "--no-leaks", "--overwrite"]) == 0
    assert "leak check skipped" in capsys.readouterr().out
    assert not (out / "test.txt").exists() and read_data_file(out / "obj.data").test is None
    assert len(read_image_list(out / "train.txt")) == 1
    assert main(argv) == 2  # without --path-map: one clear line naming the list and line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{lst}:1:" in err[0] and "--path-map" in err[0]


def test_split_stratify_and_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _clips(tmp_path / "data", clips=20, frames=2)
    out = tmp_path / "s"
    assert main(["split", str(tmp_path / "data"), "--out", str(out), "--stratify"]) == 0
    assert "images containing each class" in capsys.readouterr().out
    assert main(["split", str(tmp_path / "data"), "--out", str(out), "--ratios", "x"]) == 2
    assert main(["split", str(tmp_path / "data"), "--out", str(out), "--group-by", "("]) == 2


def test_split_bad_ratios_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _clips(tmp_path / "data", clips=3, frames=2)
    out = str(tmp_path / "s")
    for ratios, needle in (
        (["--ratios", "1e308,1e308,1"], "too large to add up"),  # was a numpy traceback
        (["--ratios", "-1,1,1"], "finite non-negative"),  # was argparse's "expected one argument"
        (["--ratios=-1,1,1"], "finite non-negative"),
        (["--ratios", "-.5,1"], "finite non-negative"),
    ):
        assert main(["split", str(tmp_path / "data"), "--out", out, *ratios]) == 2, ratios
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("detforge split: error: --ratios"), err
        assert needle in err[0]
    assert not Path(out).exists()


def test_split_tells_repeated_entries_from_images_in_two_source_splits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image in both train.txt and valid.txt of the source was reported as a 'duplicate
    list entry (same path)', the words for an image listed twice in one list."""
    data = tmp_path / "data"
    imgs = _clips(data, clips=2, frames=2)
    (data / "train.txt").write_text(f"{imgs[0]}\n{imgs[1]}\n{imgs[1]}\n{imgs[2]}\n")
    (data / "valid.txt").write_text(f"{imgs[2]}\n{imgs[3]}\n")
    (data / "obj.data").write_text(
        "classes = 2\ntrain = train.txt\nvalid = valid.txt\nnames = obj.names\n"
    )
    argv = ["split", str(data / "obj.data"), "--out", str(tmp_path / "s"), "--ratios", "0.5,0.5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 images" in out.splitlines()[0]
    assert "  1 duplicate list entries (an image listed again in its split) counted once\n" in out
    assert (
        "  1 images listed in more than one split of the sources (a leak there) counted once\n"
        in out
    )
