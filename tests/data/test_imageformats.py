"""What :func:`detforge.data.imageformats.parse_header` says about files that are not images."""

from __future__ import annotations

import pytest

from detforge.data.imageformats import HeaderError, inspect_header, parse_header

_NOT = "not a JPEG, PNG, GIF, BMP, WebP, TIFF or PNM"
_ZERO = "not an image: an interrupted copy or download?"


def _detail(data: bytes, size: int | None = None) -> tuple[str, str]:
    with pytest.raises(HeaderError) as e:
        parse_header(data, len(data) if size is None else size, lambda n: b"")
    return e.value.code, e.value.detail


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"\0" * 4096, f"all 4096 bytes are zero ({_ZERO})"),
        (b"\0", f"its one byte is zero ({_ZERO})"),
        (b"hello world\n", f'content is text ("hello world"), {_NOT}'),
        (b"\n\n  first line  \nsecond\n", f'content is text ("first line"), {_NOT}'),
        (b"x" * 50, f'content is text ("{"x" * 40}..."), {_NOT}'),
        ("\ufeffcafé au lait\n".encode(), f'content is text ("café au lait"), {_NOT}'),
        (b" \n\t\n", f"content is only blank space, {_NOT}"),
        (b"hello\0\0\0", f"content is unknown binary data, {_NOT}"),
        (b"\x01\x02\x03\x04" * 8, f"content is unknown binary data, {_NOT}"),
        (b"\xc3\x28 not utf-8", f"content is unknown binary data, {_NOT}"),
        (
            b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
            f"content is an HTML page (a failed download?), {_NOT}",
        ),
        (
            b"\n  <HTML><p>denied</p></HTML>",
            f"content is an HTML page (a failed download?), {_NOT}",
        ),
        (
            b"<?xml version='1.0'?>\n<html xmlns='x'><body/></html>",
            f"content is an HTML page (a failed download?), {_NOT}",
        ),
        (b'<?xml version="1.0"?><root/>', f"content is XML or other markup, {_NOT}"),
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:ab12\nsize 81234\n",
            "content is a Git LFS pointer, not the image (the repository was cloned without "
            "'git lfs pull'?)",
        ),
    ],
)
def test_what_a_file_that_is_not_an_image_holds(data: bytes, want: str) -> None:
    assert _detail(data) == ("image-not-image", want)


def test_zeros_in_a_longer_file_name_only_the_bytes_read() -> None:
    # the head is the first bytes of a larger file: nothing is claimed about the rest
    assert _detail(b"\0" * 16384, size=1 << 30) == (
        "image-not-image",
        f"the first 16384 bytes are all zero ({_ZERO})",
    )
    # a UTF-8 character cut at the end of the head is still text; at the end of a file it is not
    head = "é".encode() * 10
    assert _detail(head[:-1], size=100)[1] == f'content is text ("{"é" * 9}"), {_NOT}'
    assert _detail(head[:-1])[1] == f"content is unknown binary data, {_NOT}"


@pytest.mark.parametrize(
    ("data", "code", "want"),
    [
        (b"", "image-empty", "the file is empty (zero bytes)"),
        (b"\xff\xd8\xff", "image-truncated", "the file ends inside the JPEG header (truncated?)"),
        (
            b"\xff\xd8\xff\xe0\x00\x10JF",
            "image-truncated",
            "the file ends inside the JPEG header (truncated?)",
        ),
        (b"\x89PNG\r\n\x1a\n\0\0", "image-truncated", "PNG header (IHDR) missing or cut off"),
        (b"GIF89a\x01", "image-truncated", "GIF header missing or cut off"),
    ],
)
def test_empty_and_cut_headers(data: bytes, code: str, want: str) -> None:
    assert _detail(data) == (code, want)


def test_an_image_whose_end_was_never_written_says_so() -> None:
    # a JPEG header and scan start, then zeros: the copy stopped, the file kept its length
    sof = b"\xff\xc0\x00\x11\x08\x00\x10\x00\x20\x03" + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    data = b"\xff\xd8" + sof + sos + b"\x12\x34" * 100 + b"\0" * 3000
    info = inspect_header(data, data[-1024:], len(data), lambda n: b"")
    assert (info.width, info.height, info.problem) == (32, 16, "image-truncated")
    assert info.detail == (
        "JPEG end marker FFD9 missing (the last 1024 bytes are zero: an interrupted copy or "
        "download?)"
    )
    cut = data[:230]  # cut, not zeroed: no claim about zeros
    info = inspect_header(cut, cut[-1024:], len(cut), lambda n: b"")
    assert info.detail == "JPEG end marker FFD9 missing"
