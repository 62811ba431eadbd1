"""Where images to predict on come from: one image, a folder, an image list, a ``.data`` split,
or a video file.

:func:`open_source` inspects the argument and returns a :class:`Source`; iterating it yields
:class:`Frame` objects holding ``(H, W, 3)`` uint8 RGB arrays, one at a time, so a long video
never sits in memory. Image files are decoded by :func:`detforge.data.images.load_image`
(EXIF orientation applied, bounded size), as training decodes them. Videos are decoded with
PyAV (the ``video`` extra) and can be thinned with ``every=N`` (frames ``0, N, 2N, ...``).

Source syntax:

* ``img.jpg`` -- one image;
* ``folder/`` -- every image below it (recursively, sorted by path);
* ``list.txt`` -- an image list, one path per line (``#`` comments and blank lines skipped,
  relative paths resolved against the list's folder);
* ``obj.data`` with ``split="valid"``, or ``obj.data:valid`` -- the image list a ``.data``
  file names for that split (``train``, ``valid`` or ``test``);
* ``clip.mp4`` (any video container FFmpeg reads) -- its frames.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from detforge.data.imageformats import IMAGE_EXTENSIONS
from detforge.data.images import load_image
from detforge.errors import DetforgeError
from detforge.formats.common import unique_file_names

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)


@dataclass(frozen=True, eq=False)
class Frame:
    """One image to predict on.

    ``image`` is ``(H, W, 3)`` uint8 RGB. ``name`` is a file-name stem unique within the source,
    case-insensitively (:attr:`Source.names` for images, ``<video stem>_<frame index, 6
    digits>`` for video frames) used for output files.
    ``path`` is the image file (``None`` for video frames and in-memory images); ``index`` is
    the position in the source (the frame number for videos, counting every decoded frame).
    ``orig_shape`` is ``(h0, w0)`` of the full-resolution image when ``image`` was decoded
    resized (``load_image(..., fit=...)``), ``None`` when ``image`` is full resolution.
    """

    image: NDArray[np.uint8]
    name: str
    path: str | None
    index: int
    orig_shape: tuple[int, int] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(h, w)`` of the full-resolution image."""
        return self.orig_shape or (int(self.image.shape[0]), int(self.image.shape[1]))


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise DetforgeError(
            "reading or writing video needs PyAV; install it with: pip install 'detforge[video]'"
        ) from None
    return av


@dataclass(frozen=True, eq=False)
class Source:
    """A sequence of frames: image files (``kind="images"``) or one video (``kind="video"``).

    ``len(source)`` is the number of frames iteration yields (for videos it is computed from
    the container's frame count and may be an estimate when the container does not store one).
    """

    kind: Literal["images", "video"]
    paths: tuple[str, ...] = ()
    video: str | None = None
    every: int = 1
    description: str = ""

    def __len__(self) -> int:
        if self.kind == "images":
            return len(self.paths)
        n = video_frame_count(self.video or "")
        return 0 if n is None else (n + self.every - 1) // self.every

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    @property
    def names(self) -> list[str]:
        """The output stem of each image file (``Frame.name``; ``[]`` for a video): the names
        every dataset writer gives them (:func:`~detforge.formats.common.unique_file_names`)
        less the suffix, so ``a/x.jpg``, ``b/x.png`` and ``b/X.jpg`` write ``a_x``, ``b_x``
        and ``b_X_1`` (``.txt``, ``.jpg``): no two differ only in case, none too long."""
        return [os.path.splitext(n)[0] for n in unique_file_names(self.paths)]

    def frames(
        self, *, fit: int | tuple[int, int] | None = None, skipped: list[str] | None = None
    ) -> Iterator[Frame]:
        """Iterate the frames; with ``fit`` (a model's input shape) image files are decoded
        straight to the size the letterbox needs (``load_image(..., fit=...)``: what every
        command feeds the model); videos are unaffected. An image file that cannot be
        decoded raises its one-line DetforgeError, or with ``skipped`` (a list) is left out
        and its message appended there."""
        if self.kind == "images":
            for path, name, i in zip(self.paths, self.names, range(len(self.paths)), strict=True):
                try:
                    image, orig = load_image(path, fit=fit)
                except DetforgeError as exc:
                    if skipped is None:
                        raise
                    skipped.append(str(exc))
                    continue
                yield Frame(image, name, path, i, orig if fit is not None else None)
        else:
            yield from iter_video(self.video or "", every=self.every)

    @property
    def fps(self) -> float:
        """Frames per second of the video (``0.0`` for images)."""
        if self.kind != "video" or self.video is None:
            return 0.0
        av = _import_av()
        with av.open(self.video) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else 25.0


def video_frame_count(path: str) -> int | None:
    """Frames in the first video stream per the container, else by decoding; ``None`` if empty."""
    av = _import_av()
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise DetforgeError("file has no video stream", path=path)
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for pkt in container.demux(stream) if pkt.size) or None
    except av.error.FFmpegError as exc:
        raise DetforgeError(f"cannot read video: {exc}", path=path) from None


def iter_video(path: str, *, every: int = 1) -> Iterator[Frame]:
    """Decode frames ``0, every, 2*every, ...`` of the first video stream as RGB frames."""
    if every < 1:
        raise DetforgeError(f"--every must be 1 or more, got {every}")
    av = _import_av()
    stem = Path(path).stem
    try:
        container = av.open(path)
    except av.error.FFmpegError as exc:
        raise DetforgeError(f"cannot open video: {exc}", path=path) from None
    with container:
        if not container.streams.video:
            raise DetforgeError("file has no video stream", path=path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i % every:
                    continue
                rgb = frame.to_ndarray(format="rgb24")
                yield Frame(np.ascontiguousarray(rgb, dtype=np.uint8), f"{stem}_{i:06d}", None, i)
        except av.error.FFmpegError as exc:
            raise DetforgeError(f"video decoding failed: {exc}", path=path) from None


def _named_images(p: Path, split: str | None, path_map: Sequence[tuple[str, str]]) -> list[str]:
    """The images a folder, an image list or one split (default ``valid``) of a ``.data`` file
    names, resolved as every other command resolves them
    (:func:`~detforge.formats.darknet.sources.resolve_sources`)."""
    from detforge.formats.darknet.sources import resolve_sources

    only = [split or "valid"] if p.suffix.lower() == ".data" and not p.is_dir() else None
    found = resolve_sources(p, path_map=path_map, splits=only)
    found.relocate_missing()
    return found.paths


def split_data_arg(source: str, split: str | None) -> tuple[str, str | None]:
    """``"obj.data:valid"`` -> ``("obj.data", "valid")``; leaves Windows drives alone."""
    head, sep, tail = source.rpartition(":")
    if sep and head.lower().endswith(".data") and tail and "/" not in tail and "\\" not in tail:
        if split is not None and split != tail:
            raise DetforgeError(f"split given twice: {tail!r} in the source and --split {split}")
        return head, tail
    return source, split


def _not_found_hint(src: str) -> str:
    """What to give instead of a missing ``src``, for what it looks like: a URL (nothing is
    downloaded), a pattern the shell did not expand, standard input, or a plain path."""
    import re

    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", src):
        return "detforge reads local files only, never a URL: download it first"
    if any(c in src for c in "*?["):
        return "a pattern is not expanded here: give its folder, or an image list"
    if src == "-":
        return "standard input is not read: give an image, folder, image list, .data or video"
    return "give an image, folder, image list, .data or video"


def open_source(
    source: str | os.PathLike[str],
    *,
    split: str | None = None,
    every: int = 1,
    path_map: Sequence[tuple[str, str]] = (),
) -> Source:
    """Work out what ``source`` is (see the module docstring) and return it as a :class:`Source`.

    ``every`` thins videos (and is an error for image sources unless 1). Raises DetforgeError
    for a missing path, an unknown file type, an empty folder or list, or a ``.data`` file
    without the split.
    """
    if every < 1:
        raise DetforgeError(f"--every must be 1 or more, got {every}")
    src, split = split_data_arg(os.fspath(source), split)
    p = Path(src)
    if not p.exists():
        raise DetforgeError(f"source not found: {_not_found_hint(src)}", path=src)
    suffix = p.suffix.lower()
    if p.is_dir() or suffix in (".data", ".txt", ".list", ".lst"):
        paths = _named_images(p, split, path_map)
        what = (
            f"folder {src}"
            if p.is_dir()
            else f"{src} split {split or 'valid'}"
            if suffix == ".data"
            else f"image list {src}"
        )
    elif suffix in IMAGE_EXTENSIONS:
        paths = [src]
        what = f"image {src}"
    elif suffix in VIDEO_SUFFIXES:
        _import_av()
        return Source("video", video=src, every=every, description=f"video {src}")
    else:
        raise DetforgeError(
            f"don't know how to read {suffix or 'a file without suffix'} as a source; give an "
            f"image ({', '.join(IMAGE_EXTENSIONS)}), a folder, an image list (.txt), "
            f"a .data file or a video ({', '.join(sorted(VIDEO_SUFFIXES))})",
            path=src,
        )
    if split is not None and suffix != ".data":
        raise DetforgeError("--split only applies to a .data source", path=src)
    if every != 1:
        raise DetforgeError("--every only applies to a video source", path=src)
    if not paths:
        raise DetforgeError(f"no images found in {what}", path=src)
    if not p.is_dir():  # lists name files that may be gone: say so before any work is done
        missing = [q for q in paths if not os.path.isfile(q)]
        if missing:
            raise DetforgeError(
                f"{len(missing)} of {len(paths)} listed images do not exist, e.g. {missing[0]}; "
                "fix the list, or use --path-map OLD=NEW if the dataset moved",
                path=src,
            )
    return Source("images", paths=tuple(paths), description=what)
