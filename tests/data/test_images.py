"""The one image decoder: EXIF orientation, every pixel mode, broken files, and bounded decode
of images that declare enormous sizes (a header-only PNG of 100000 x 100000 pixels)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.data.images import MAX_PIXELS, load_image
from detforge.errors import DetforgeError


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR declares ``width x height`` RGB pixels and whose single IDAT holds a
    few compressed bytes: valid chunk CRCs, a few dozen bytes on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_exif_rotation_and_broken_image(tmp_path: Path) -> None:
    img = np.zeros((20, 40, 3), dtype=np.uint8)
    img[:, :10] = 255  # white band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    Image.fromarray(img).save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    arr, hw0 = load_image(tmp_path / "rot.jpg", fit=40)
    assert arr.shape == (40, 20, 3) and hw0 == (40, 20)
    assert arr[:10, :, 0].mean() > 200 and arr[-10:, :, 0].mean() < 50  # band now on top
    full = load_image(tmp_path / "rot.jpg")
    assert full.image.shape == (40, 20, 3) and full.orig_shape == (40, 20)
    stored = load_image(tmp_path / "rot.jpg", exif_transpose=False)
    assert stored.image.shape == (20, 40, 3)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DetforgeError, match="cannot decode") as err:
        load_image(str(tmp_path / "bad.jpg"), fit=32)
    assert err.value.path == str(tmp_path / "bad.jpg")
    with pytest.raises(DetforgeError, match="image not found"):
        load_image(tmp_path / "missing.png")


def test_any_image_mode_becomes_rgb_uint8(tmp_path: Path) -> None:
    ramp16 = (np.arange(64, dtype=np.uint16)[None, :] * 1024).repeat(8, 0)  # 0..64512
    Image.fromarray(ramp16).save(tmp_path / "deep.png")
    Image.fromarray(np.full((8, 64), 77, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((8, 64, 4), 200, np.uint8)).save(tmp_path / "rgba.png")
    Image.fromarray(np.full((8, 64, 3), 9, np.uint8)).convert("P").save(tmp_path / "pal.png")
    deep, _ = load_image(str(tmp_path / "deep.png"), fit=64)
    assert deep.shape == (8, 64, 3) and deep.dtype == np.uint8
    np.testing.assert_array_equal(deep[0, :, 1], np.arange(64) * 4)  # top 8 of 16 bits
    for name, value in [("grey", 77), ("rgba", 200), ("pal", 9)]:
        arr, hw0 = load_image(str(tmp_path / f"{name}.png"), fit=32)
        assert arr.shape == (4, 32, 3) and hw0 == (8, 64) and arr.dtype == np.uint8
        assert abs(int(arr[2, 5, 0]) - value) <= 1


def test_fit_decodes_to_the_letterbox_size(tmp_path: Path) -> None:
    from detforge.data.letterbox import fit_size

    Image.fromarray(np.zeros((30, 70, 3), np.uint8)).save(tmp_path / "a.png")
    for fit in (64, (64, 64), (256, 128), 640):
        arr, hw0 = load_image(tmp_path / "a.png", fit=fit)
        assert hw0 == (30, 70) and arr.shape[:2] == fit_size((30, 70), fit)


@pytest.mark.parametrize(("w", "h"), [(100_000, 100_000), (20_000, 9_000)])
def test_huge_declared_size_is_one_clean_error(tmp_path: Path, w: int, h: int) -> None:
    assert w * h > MAX_PIXELS
    big = header_only_png(tmp_path / "big.png", w, h)
    assert big.stat().st_size < 200
    for fit in (None, 640):
        with pytest.raises(DetforgeError) as err:
            load_image(big, fit=fit)
        msg = str(err.value)
        assert f"{w}x{h} pixels" in msg and "megapixels" in msg and "\n" not in msg
        assert err.value.path == str(big)


def test_big_image_prints_no_pillow_warning(tmp_path: Path) -> None:
    """Between Pillow's warning (89 MP) and error (179 MP) limits Pillow warns on open;
    detforge has its own limit and stays quiet, without touching the global filters."""
    import warnings

    from detforge.check.images import inspect_image

    w, h = 10_000, 9_500  # 95 megapixels: over Image.MAX_IMAGE_PIXELS, under MAX_PIXELS
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < w * h < MAX_PIXELS
    big = header_only_png(tmp_path / "big.png", w, h)
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DetforgeError, match="cannot decode"):
            load_image(big)  # the header-only file fails to decode, after the open
        inspect_image(str(big), deep=True)
    assert not [c for c in caught if issubclass(c.category, Image.DecompressionBombWarning)]
    assert warnings.filters == filters
