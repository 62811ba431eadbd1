from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.data.images import load_image
from detforge.errors import DetforgeError
from detforge.predict.sources import open_source, video_frame_count


def _write_video(path: Path, n: int, *, w: int = 64, h: int = 48) -> None:
    import av

    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            arr = np.full((h, w, 3), (i * 20) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _img(path: Path, w: int = 20, h: int = 10, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, dtype=np.uint8)).save(path)
    return path


def test_video_frames_and_every(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    _write_video(video, 12)
    assert video_frame_count(str(video)) == 12
    src = open_source(video)
    frames = list(src)
    assert len(src) == 12 and len(frames) == 12
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    # Decoded content follows the written frames (grey level 20*i, lossy codec).
    assert abs(int(frames[5].image.mean()) - 100) < 8
    src3 = open_source(video, every=5)
    got = list(src3)
    assert len(src3) == 3
    assert [f.index for f in got] == [0, 5, 10]
    assert [f.name for f in got] == ["clip_000000", "clip_000005", "clip_000010"]


def test_folder_list_and_image(tmp_path: Path) -> None:
    _img(tmp_path / "imgs" / "b.png", value=7)
    _img(tmp_path / "imgs" / "a.jpg")
    _img(tmp_path / "imgs" / "sub" / "a.png")
    (tmp_path / "imgs" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    src = open_source(tmp_path / "imgs")
    assert [Path(p).name for p in src.paths] == ["a.jpg", "b.png", "a.png"]
    names = [f.name for f in src]
    assert names == src.names == ["imgs_a", "b", "sub_a"]  # the two 'a' stems told apart
    one = list(open_source(tmp_path / "imgs" / "b.png"))
    assert len(one) == 1 and one[0].image.shape == (10, 20, 3) and one[0].image[0, 0, 0] == 7


def test_image_names_differ_in_more_than_case(tmp_path: Path) -> None:
    """Output stems follow formats.common.unique_file_names: x, X and x clash (a
    case-insensitive file system keeps one of x.txt and X.txt), so each gets its folder's
    name, then a counter; a prefixed stem too long for a file name is shortened with a hash."""
    for rel in ("a/x.jpg", "b/x.png", "b/X.jpg", f"c/{'n' * 251}.jpg", f"d/{'n' * 251}.jpg"):
        _img(tmp_path / "imgs" / rel)
    src = open_source(tmp_path / "imgs")
    assert [Path(p).relative_to(tmp_path / "imgs").as_posix() for p in src.paths][:3] == [
        "a/x.jpg", "b/X.jpg", "b/x.png"
    ]  # fmt: skip
    names = src.names
    assert names[:3] == ["a_x", "b_X", "b_x_1"]
    assert names[3] != names[4]
    for name in names[3:]:
        assert name.startswith(("c_nnn", "d_nnn")) and len(name) + len(".txt") <= 255
    assert [f.name for f in src] == names
    assert open_source(tmp_path / "imgs" / "a" / "x.jpg").names == ["x"]


def test_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DetforgeError, match="source not found: give an image, folder, image"):
        open_source(tmp_path / "nope.jpg")
    hints = {  # what a missing source looks like says what to give instead
        "https://example.com/cat.jpg": "local files only, never a URL: download it first",
        str(tmp_path / "*.jpg"): "a pattern is not expanded here: give its folder",
        "-": "standard input is not read",
    }
    for src, hint in hints.items():
        with pytest.raises(DetforgeError) as info:
            open_source(src)
        assert str(info.value).startswith(f"{src}: source not found: "), str(info.value)
        assert hint in str(info.value), str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DetforgeError, match="no images found"):
        open_source(tmp_path / "empty")
    (tmp_path / "x.xyz").write_text("hi")
    with pytest.raises(DetforgeError, match="don't know how"):
        open_source(tmp_path / "x.xyz")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DetforgeError, match="cannot decode") as info:
        load_image(bad)
    assert info.value.path == str(bad)
    with pytest.raises(DetforgeError, match="--every"):
        open_source(_img(tmp_path / "ok.png"), every=2)


def test_missing_av_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(DetforgeError, match=r"pip install 'detforge\[video\]'"):
        open_source(video)


def test_image_list_and_data_split(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _img(tmp_path / "imgs" / f"{name}.png")
    (tmp_path / "train.txt").write_text("# training images\nimgs/a.png\r\n\nimgs/b.png\n")
    (tmp_path / "valid.txt").write_text(f"{tmp_path / 'imgs' / 'c.png'}\n")
    (tmp_path / "obj.names").write_text("x\n")
    data = tmp_path / "obj.data"
    data.write_text("classes = 1\ntrain = train.txt\nvalid = valid.txt\nnames = obj.names\n")
    lst = open_source(tmp_path / "train.txt")
    assert [Path(p).name for p in lst.paths] == ["a.png", "b.png"]  # relative to the list
    assert [Path(p).name for p in open_source(data).paths] == ["c.png"]  # valid by default
    assert [Path(p).name for p in open_source(f"{data}:train").paths] == ["a.png", "b.png"]
    assert [Path(p).name for p in open_source(data, split="train").paths] == ["a.png", "b.png"]
    with pytest.raises(DetforgeError, match="no test= entry"):
        open_source(data, split="test")
    with pytest.raises(DetforgeError, match="split given twice"):
        open_source(f"{data}:train", split="valid")
    with pytest.raises(DetforgeError, match="--split only applies"):
        open_source(tmp_path / "train.txt", split="train")
    (tmp_path / "gone.txt").write_text("imgs/a.png\nimgs/zz.png\n")
    with pytest.raises(DetforgeError, match="1 of 2 listed images do not exist"):
        open_source(tmp_path / "gone.txt")
