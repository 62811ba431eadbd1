"""Image integrity from file bytes, compared with what Pillow (the reference decoder) says."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.check.conftest import MakeDataset

from detforge.check.images import (
    image_findings,
    inspect_bytes,
    inspect_image,
    inspect_images,
    oriented_size,
)


def _noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("fmt", "ext", "opts"),
    [
        ("JPEG", ".jpg", {}),
        ("JPEG", ".jpg", {"progressive": True}),
        ("PNG", ".png", {}),
        ("GIF", ".gif", {}),
        ("BMP", ".bmp", {}),
        ("WEBP", ".webp", {"lossless": True}),
        ("WEBP", ".webp", {"quality": 80}),
        ("TIFF", ".tif", {}),
    ],
)
def test_sizes_agree_with_pillow(tmp_path: Path, fmt: str, ext: str, opts: dict) -> None:
    p = tmp_path / f"x{ext}"
    _noise((123, 45)).save(p, fmt, **opts)
    info = inspect_image(str(p))
    with Image.open(p) as im:
        assert (info.width, info.height) == im.size
    assert info.problem == "" and info.orientation == 1


def test_clean_files_give_no_findings(tmp_path: Path) -> None:
    paths = []
    for i, fmt in enumerate(["JPEG", "PNG", "GIF"]):
        p = tmp_path / f"{i}.{fmt.lower().replace('jpeg', 'jpg')}"
        _noise((64, 64), i).save(p, fmt)
        paths.append(str(p))
    infos = inspect_images(paths, deep=True, workers=3)
    assert image_findings(paths, infos) == []


def test_broken_files(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    _noise((400, 300)).save(big, "JPEG", quality=95)
    data = big.read_bytes()
    cases = {
        "empty.jpg": b"",
        "zeros.jpg": b"\0" * 4096,
        "page.jpg": b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
        "photo.jpg": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
        "half.jpg": data[: len(data) // 2],
        "head.jpg": data[:300],
        "notes.png": b"plain text, no image\n",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    png = tmp_path / "cut.png"
    _noise((200, 100)).save(png, "PNG")
    (tmp_path / "cut2.png").write_bytes(png.read_bytes()[:-12])  # IEND chunk gone
    (tmp_path / "cut3.png").write_bytes(png.read_bytes()[:20000])  # cut inside IDAT
    names = [*cases, "cut2.png", "cut3.png", "nothere.jpg"]
    got = {n: inspect_image(str(tmp_path / n)) for n in names}
    assert got["empty.jpg"].problem == "image-empty"
    assert got["page.jpg"].problem == "image-not-image"
    assert got["page.jpg"].detail == (
        "content is an HTML page (a failed download?), not a JPEG, PNG, GIF, BMP, WebP, TIFF or PNM"
    )
    assert got["zeros.jpg"][4:6] == (
        "image-not-image",
        "all 4096 bytes are zero (not an image: an interrupted copy or download?)",
    )
    assert got["empty.jpg"].detail == "the file is empty (zero bytes)"
    assert got["head.jpg"].detail == "the file ends inside the JPEG header (truncated?)"
    assert got["notes.png"].detail == (
        'content is text ("plain text, no image"), not a JPEG, PNG, GIF, BMP, WebP, TIFF or PNM'
    )
    assert got["photo.jpg"].problem == "image-unsupported"
    assert got["half.jpg"].problem == "image-truncated"
    assert (got["half.jpg"].width, got["half.jpg"].height) == (400, 300)
    assert got["head.jpg"].problem == "image-truncated"
    assert got["notes.png"].problem == "image-not-image"
    assert got["cut2.png"].problem == "image-truncated"
    assert got["cut3.png"].problem == "image-truncated"
    assert got["nothere.jpg"].problem == "image-missing"
    # Pillow agrees that the truncated files cannot be decoded
    for name in ("half.jpg", "cut3.png"):
        with pytest.raises(OSError), Image.open(tmp_path / name) as im:
            im.load()
    assert inspect_bytes(data[:-2]).problem == "image-truncated"
    assert inspect_bytes(data).problem == ""


def test_deep_decode_finds_corrupt_pixel_data(tmp_path: Path) -> None:
    p = tmp_path / "x.png"
    _noise((120, 80)).save(p, "PNG")
    raw = bytearray(p.read_bytes())
    start = raw.index(b"IDAT") + 200
    raw[start : start + 64] = bytes(64)  # zero a run of compressed data, keep IEND
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(raw))
    assert inspect_image(str(bad)).problem == ""  # headers and end marker are intact
    deep = inspect_image(str(bad), deep=True)
    assert deep.problem == "image-decode-failed"
    with pytest.raises(Exception), Image.open(bad) as im:  # noqa: B017 - Pillow agrees
        im.load()


def test_tiny_exif_rotated_and_misnamed(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.jpg"
    Image.new("RGB", (16, 24)).save(tiny)
    rot = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    _noise((80, 40)).save(rot, "JPEG", exif=exif.tobytes())
    png_as_jpg = tmp_path / "fake.jpg"
    Image.new("RGB", (40, 40)).save(png_as_jpg, "PNG")
    paths = [str(tiny), str(rot), str(png_as_jpg)]
    infos = inspect_images(paths, workers=1)
    assert infos[1].orientation == 6 and oriented_size(infos[1]) == (40, 80)
    found = {(f.code, Path(f.path or "").name, f.severity) for f in image_findings(paths, infos)}
    assert found == {
        ("image-tiny", "tiny.jpg", "warning"),
        ("image-exif-rotated", "rot.jpg", "warning"),
        ("image-extension", "fake.jpg", "info"),
    }


def test_missing_image_is_reported_at_the_list_line(tmp_path: Path) -> None:
    infos = inspect_images([str(tmp_path / "gone.jpg")])
    (f,) = image_findings([str(tmp_path / "gone.jpg")], infos, origins=[("train.txt", 7)])
    assert (f.code, f.path, f.line, f.severity) == ("image-missing", "train.txt", 7, "error")


def test_pipes_and_folders_named_like_images_do_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    folder = tmp_path / "dir.jpg"
    folder.mkdir()
    infos = inspect_images([str(fifo), str(folder)], workers=1)
    assert [i.problem for i in infos] == ["image-not-image", "image-not-image"]
    assert "regular file" in infos[0].detail and "folder" in infos[1].detail


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "locked.jpg"
    _noise((40, 40)).save(p, "JPEG")
    real_open = os.open

    def deny(path: str, flags: int, *args: int) -> int:
        if str(path) == str(p):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny)  # tests run as root, where chmod 000 still reads
    info = inspect_image(str(p))
    assert (info.problem, info.detail) == ("image-unreadable", "Permission denied")
    (f,) = image_findings([str(p)], [info])
    assert (f.code, f.severity) == ("image-unreadable", "error")


def test_a_folder_named_like_an_image_is_named_so_from_a_warm_cache(
    make_darknet: MakeDataset,
) -> None:
    """The stat pass sees only "no regular file" where a folder or a FIFO is; such a path is
    read again on every check (never cached), so a warm check names it as the first did
    (not ``image-missing``)."""
    from detforge.check.darknet import scan_darknet

    data = make_darknet({"a": "0 0.5 0.5 0.2 0.2\n"})
    (data.parent / "img" / "dir.jpg").mkdir()
    os.mkfifo(data.parent / "img" / "pipe.jpg")
    with open(data.parent / "train.txt", "a") as f:
        f.write("img/dir.jpg\nimg/pipe.jpg\nimg/gone.jpg\n")
    want = ["image-not-image", "image-not-image", "image-missing"]
    for _ in range(2):  # a first check, then one from the per-file caches
        scan = scan_darknet(data, reuse=False)
        assert [i.problem for i in scan.infos] == ["", *want]
        assert [i.detail for i in scan.infos][1] == "this path is a folder"
