"""Reading small text files (lists, names, ``.data``) line by line, whatever their encoding.

Text files are UTF-8 (a BOM is fine), decoded line by line, so one bad line never changes how
the other lines read (a file whose other lines hold UTF-8 names keeps them). A line that is
not UTF-8 is, in a list of paths, decoded as the operating system decodes file names
(``surrogateescape``: the exact bytes, so the file it names opens and is written back
unchanged); in any other text file (names, ``.data``) it is an error naming the line.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from detforge.errors import DetforgeError


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path when it is a regular file (a link to one included); otherwise a
    one-line :class:`DetforgeError` naming it: ``"<what> file not found"``, or that it is a
    folder, or not a regular file (a FIFO or device, never opened: reading one could hang)."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except (OSError, ValueError):  # missing, a broken link, a loop, a NUL in the name
        raise DetforgeError(f"{what} file not found", path=p) from None
    if stat.S_ISDIR(mode):
        raise DetforgeError(f"is a folder; give the {what} file", path=p)
    if not stat.S_ISREG(mode):
        raise DetforgeError(f"is not a regular file (a pipe or a device?); give the {what} file",
                            path=p)  # fmt: skip
    return p


def read_regular_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file ``path``. Opened with ``O_NONBLOCK``, so a FIFO or device
    put where a label or list was expected cannot hang the read: it raises ``OSError``
    (``EINVAL``, "not a regular file"); a folder raises ``IsADirectoryError``, a missing file
    ``FileNotFoundError``, as ``open`` does."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", os.fspath(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def decode_lines(data: bytes) -> tuple[list[str], list[int]]:
    """``(lines, fallback)``: the lines of ``data`` without endings (LF, CRLF or CR; a final
    empty line dropped) and the 1-based numbers of lines that were not UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    fallback: list[int] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raw = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        out = []
        for n, line in enumerate(raw, start=1):
            try:
                out.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(line.decode("utf-8", "surrogateescape"))
                fallback.append(n)
        text = "\n".join(out)
    # only LF, CRLF and CR end lines (str.splitlines would also split on \x85, \u2028 ...)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines, fallback


def read_text_lines(
    path: str | os.PathLike[str], what: str = "text file", hint: str = "", *, paths: bool = False
) -> list[str]:
    """The lines of ``path`` (see :func:`decode_lines`); a missing, unreadable or binary file
    is a :class:`DetforgeError` naming it (``hint`` is appended to "not found"), and so is a
    line that is not UTF-8 unless the lines are ``paths``."""
    p = Path(path)
    try:
        data = read_regular_file(p)
    except FileNotFoundError:
        raise DetforgeError(f"{what} not found" + hint, path=p) from None
    except IsADirectoryError:
        raise DetforgeError(f"{what} expected, found a folder", path=p) from None
    except OSError as exc:
        raise DetforgeError(f"cannot read {what}: {exc.strerror}", path=p) from None
    if b"\0" in data[:8192]:
        raise DetforgeError(f"{what} expected, but this is a binary file", path=p)
    lines, fallback = decode_lines(data)
    if fallback and not paths:
        raise DetforgeError(
            f"this line of the {what} is not UTF-8 text; re-save it as UTF-8",
            path=p,
            line=fallback[0],
        )
    return lines
