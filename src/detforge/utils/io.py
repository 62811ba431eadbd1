"""Safe file output: atomic writes and image linking.

detforge never leaves a half-written file behind (the guide's "corrupt image from an
interrupted conversion"): everything is written to a temporary name in the destination folder
and renamed into place, which is atomic on POSIX and on Windows for same-volume renames.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from detforge.errors import DetforgeError

ImageMode = Literal["link", "copy", "none"]
"""How a writer places images in its output: hard/sym-link (default), copy, or not at all."""


def current_umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def short_name(name: str, limit: int = 96) -> str:
    """``name`` cut to at most ``limit`` UTF-8 bytes (for temporary names derived from it)."""
    raw = name.encode("utf-8", "surrogateescape")
    return name if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


class WriteError(DetforgeError, OSError):
    """An output that cannot be written (a folder at the target, a file where a folder must
    go, a folder that cannot be made): a :class:`DetforgeError` for the user, and an
    :class:`OSError` for best-effort writers (caches) that skip what they cannot write."""


def blocking_file(folder: str | os.PathLike[str]) -> Path | None:
    """The existing non-folder that stops ``folder`` from being a folder: ``folder`` itself or
    the nearest existing folder above it when that is a file; ``None`` when ``folder`` is, or
    can be made, a folder."""
    p = Path(folder)
    for q in (p, *p.parents):
        if q.is_dir():
            return None
        if os.path.lexists(q):
            return q
    return None


def make_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and the folders above it) if missing; an existing file in the way is
    a :class:`WriteError` naming it."""
    p = Path(folder)
    blocker = blocking_file(p)
    if blocker is not None:
        raise WriteError("is an existing file, not a folder; cannot write into it", path=blocker)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # no permission, a name too long, a read-only disk
        raise WriteError(f"cannot create the folder ({exc.strerror or exc})", path=p) from None
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh empty temporary file beside ``path`` (the usual permissions, a name detforge
    recognises as its own), for writers that take a file name (``torch.onnx.export``); on
    success it is renamed to ``path``, on an exception removed, ``path`` left as it was.
    A folder at ``path``, or a file where a folder above it should be, is a
    :class:`WriteError` (nothing is written)."""
    target = Path(path)
    if target.is_dir():
        raise WriteError("is a folder; give a file name to write", path=target)
    make_folder(target.parent)
    # the temporary name stays within NAME_MAX (255 bytes) whatever the target's length
    fd, tmp = tempfile.mkstemp(
        prefix=f".{short_name(target.name)}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    # mkstemp makes 0600 files; output should get the usual permissions (0666 less the umask).
    os.chmod(tmp, 0o666 & ~current_umask())
    try:
        yield Path(tmp)
        try:
            os.replace(tmp, target)
        except IsADirectoryError:  # a folder made at ``path`` while writing
            raise WriteError("is a folder; give a file name to write", path=target) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", *, fsync: bool = False, **kwargs: object
) -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    ``mode`` is ``"w"`` (text, UTF-8, ``\\n`` newlines unless given) or ``"wb"``. ``fsync``
    flushes the data to disk before the rename (checkpoints: a power cut then leaves the old
    or the new file, never an empty one); many small files leave it off.
    """
    with atomic_path(path) as tmp:
        if "b" in mode:
            f = open(tmp, mode)  # noqa: SIM115
        else:
            kwargs.setdefault("encoding", "utf-8")
            kwargs.setdefault("newline", "\n")
            f = open(tmp, mode, **kwargs)  # type: ignore[call-overload]  # noqa: SIM115
        with f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (``fsync``: synced to disk before the rename)."""
    with atomic_open(path, "wb", fsync=fsync) as f:
        f.write(data)


def place_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], mode: ImageMode) -> None:
    """Put ``src`` at ``dst`` by ``mode``: ``link`` tries a hard link, then a symlink to the
    absolute source, then a copy; ``copy`` copies (atomically); ``none`` does nothing.

    An existing ``dst`` is replaced. The source is never modified.
    """
    if mode == "none":
        return
    s, d = Path(src), Path(dst)
    try:
        _place(s, d, mode)
    except OSError as exc:  # a name too long, a link loop, no permission, a full disk
        raise DetforgeError(
            f"cannot link or copy the image to {d} ({exc.strerror or exc})", path=s
        ) from None


def _place(s: Path, d: Path, mode: ImageMode) -> None:
    if not s.is_file():
        raise DetforgeError("image not found; cannot link or copy it", path=s)
    d.parent.mkdir(parents=True, exist_ok=True)
    if d.is_symlink() or d.exists():
        if d.resolve() == s.resolve():
            return
        d.unlink()
    if mode == "link":
        try:
            os.link(s, d)
            return
        except OSError:
            pass
        try:
            os.symlink(s.resolve(), d)
            return
        except OSError:
            pass
    elif mode != "copy":
        raise DetforgeError(f"unknown image mode {mode!r}; use link, copy or none")
    with atomic_open(d, "wb") as f, open(s, "rb") as fin:
        shutil.copyfileobj(fin, f, 1 << 20)
