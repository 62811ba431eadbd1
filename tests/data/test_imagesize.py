from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps, features

from detforge.data.imagesize import read_image_header, read_sizes
from detforge.errors import DetforgeError

CASES = [
    ("a.jpg", "RGB", {}),
    ("prog.jpg", "RGB", {"progressive": True, "quality": 80}),
    ("gray.jpg", "L", {}),
    ("a.png", "RGBA", {}),
    ("a.gif", "P", {}),
    ("a.bmp", "RGB", {}),
    ("a.tif", "RGB", {}),
    ("lossy.webp", "RGB", {"quality": 80}),
    ("lossless.webp", "RGB", {"lossless": True}),
    ("alpha.webp", "RGBA", {"quality": 80}),
]


@pytest.mark.parametrize(("name", "mode", "kw"), CASES)
def test_sizes_match_pillow(tmp_path: Path, name: str, mode: str, kw: dict[str, object]) -> None:
    if name.endswith(".webp") and not features.check("webp"):
        pytest.fail("Pillow without WEBP support")
    p = tmp_path / name
    Image.new(mode, (123, 45)).save(p, **kw)
    hdr = read_image_header(p)
    with Image.open(p) as im:
        assert (hdr.width, hdr.height) == im.size == (123, 45)
    assert hdr.orientation == 1


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_exif_orientation_applied(tmp_path: Path, orientation: int, ext: str) -> None:
    p = tmp_path / f"o{orientation}{ext}"
    exif = Image.Exif()
    exif[274] = orientation
    exif[271] = "camera maker, to push the orientation tag past the first entry"
    Image.new("RGB", (64, 20), (200, 10, 10)).save(p, exif=exif.tobytes())
    hdr = read_image_header(p)
    with Image.open(p) as im:
        shown = ImageOps.exif_transpose(im)
        assert (hdr.width, hdr.height) == shown.size
    assert hdr.orientation == orientation
    assert (hdr.raw_width, hdr.raw_height) == (64, 20)
    if orientation >= 5:
        assert (hdr.width, hdr.height) == (20, 64)


def test_jpeg_with_big_exif_block_before_frame(tmp_path: Path) -> None:
    p = tmp_path / "big.jpg"
    exif = Image.Exif()
    exif[270] = "x" * 30000  # ImageDescription: a large APP1 segment to seek over
    exif[274] = 6
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(
        p, exif=exif.tobytes(), quality=95
    )
    hdr = read_image_header(p)
    assert (hdr.width, hdr.height, hdr.orientation) == (300, 400, 6)


def test_errors_and_bulk_read(tmp_path: Path) -> None:
    good = tmp_path / "g.png"
    Image.new("RGB", (7, 9)).save(good)
    empty = tmp_path / "e.jpg"
    empty.write_bytes(b"")
    trunc = tmp_path / "t.jpg"
    Image.new("RGB", (50, 50)).save(tmp_path / "full.jpg")
    trunc.write_bytes((tmp_path / "full.jpg").read_bytes()[:10])
    text = tmp_path / "x.jpg"
    text.write_text("hello, not an image at all")
    for bad, needle in [
        (empty, "empty"),
        (trunc, "truncated"),
        (text, "not a JPEG"),
        (tmp_path / "none.jpg", "not found"),
    ]:
        with pytest.raises(DetforgeError) as e:
            read_image_header(bad)
        assert needle in e.value.message and e.value.path == str(bad)
    paths = [str(good), str(empty), str(trunc)] * 100 + [str(tmp_path / "none.jpg")]
    ws, hs, errs = read_sizes(paths, workers=4)
    assert ws.shape == (301,) and ws[0] == 7 and hs[0] == 9 and ws[3] == 7
    assert sorted(errs) == [i for i in range(300) if i % 3 != 0] + [300]
    assert ws[1] == 0 and "empty" in errs[1] and "not found" in errs[300]
    ws1, _, errs1 = read_sizes(paths, workers=1)
    assert np.array_equal(ws, ws1) and errs == errs1


@pytest.mark.parametrize("ext", ["jpg", "png", "tif"])
def test_files_longer_than_the_first_read_and_folders(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"big.{ext}"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (220, 330, 3), dtype=np.uint8)).save(p)
    assert p.stat().st_size > 16384  # the header comes from the first read, the rest is not read
    hdr = read_image_header(p)
    assert (hdr.width, hdr.height) == (330, 220)
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(DetforgeError, match="cannot read image"):
        read_image_header(tmp_path / "dir.jpg")


def test_a_head_shorter_than_the_file_never_changes_the_jpeg_walk() -> None:
    """The one JPEG walker reads on (``more``) where a header lies past the bytes given: the
    answer (size or error) is the same whatever prefix of a damaged file it starts from."""
    import io
    import random

    from detforge.data.imageformats import HeaderError, parse_header

    def outcome(data: bytes, buf: bytes) -> object:
        pos = [len(buf)]

        def more(n: int) -> bytes:
            got = data[pos[0] : pos[0] + n]
            pos[0] += len(got)
            return got

        try:
            h = parse_header(buf, len(data), more)
        except HeaderError as exc:
            return exc.code, exc.detail
        except Exception as exc:  # struct.error and friends: same type and message
            return type(exc), str(exc)
        return h.format, h.width, h.height, h.orientation

    rng = random.Random(0)
    seeds = []
    for k, (orient, text) in enumerate([(1, 0), (6, 3000), (8, 20)]):
        exif = Image.Exif()
        exif[274] = orient
        if text:
            exif[270] = "x" * text
        out = io.BytesIO()
        img = np.random.default_rng(k).integers(0, 255, (17 + k, 23, 3), dtype=np.uint8)
        Image.fromarray(img).save(out, format="JPEG", exif=exif.tobytes(), progressive=k == 1)
        seeds.append(out.getvalue())
    checked = 0
    for s in seeds:
        cases = [s[: rng.randrange(3, len(s))] for _ in range(150)]
        for _ in range(250):
            b = bytearray(s)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(2, len(b))] = rng.choice([0xFF, 0, 0xD9, 0xDA, 0xC0, 0xE1, 7])
            cases.append(bytes(b))
        for c in [s, *cases]:
            whole, prefix = outcome(c, c), outcome(c, c[:16384])
            assert prefix == whole, len(c)
            # a buffer shorter than the file never changes the answer either
            cut = c[: rng.randrange(3, len(c) + 1)]
            if outcome(c, cut) != whole:
                raise AssertionError(f"prefix of {len(cut)} bytes changed the result")
            checked += 1
    assert checked == 3 * 401


def test_bulk_read_agrees_with_one_by_one_on_every_kind_of_file(
    tmp_path: Path, stat_backend: str
) -> None:
    """read_sizes (the C helper reads the heads, or threads without it) gives exactly the
    header or error message of read_image_header for each file."""
    paths = []
    for name, mode, kw in CASES:
        if name.endswith(".webp") and not features.check("webp"):
            continue
        p = tmp_path / name
        Image.new(mode, (123, 45)).save(p, **kw)
        paths.append(str(p))
    exif = Image.Exif()
    exif[270] = "x" * 30000  # the frame header lies beyond the first read
    exif[274] = 6
    Image.new("RGB", (40, 30)).save(tmp_path / "late.jpg", exif=exif.tobytes())
    for o in (3, 8):
        e = Image.Exif()
        e[274] = o
        Image.new("RGB", (40, 30)).save(tmp_path / f"rot{o}.tif", exif=e.tobytes())
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 255, (220, 330, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "dir.jpg").mkdir()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "late.jpg").read_bytes()[:20000])
    for name in ("late.jpg", "rot3.tif", "rot8.tif", "b.png", "dir.jpg", "empty.jpg",
                 "text.jpg", "cut.jpg", "missing.jpg"):  # fmt: skip
        paths.append(str(tmp_path / name))
    paths = paths * 3
    ws, hs, errs = read_sizes(paths)
    for i, p in enumerate(paths):
        try:
            hdr = read_image_header(p)
        except DetforgeError as exc:
            assert (ws[i], hs[i], errs.get(i)) == (0, 0, exc.message), p
        else:
            assert (ws[i], hs[i], i in errs) == (hdr.width, hdr.height, False), p
    assert (ws[paths.index(str(tmp_path / "late.jpg"))], len(errs)) == (30, 5 * 3)
