"""Writing what prediction draws: annotated images and video, never over an input.

Every file is written atomically (a temporary name renamed into place), so an interrupted run
never leaves a truncated picture behind. Prediction *files* (COCO results JSON, per-image
``.txt``, darknet ``comp4``) are a format: :mod:`detforge.formats.predictions`.

* :class:`InputGuard` -- refuses an output path that is one of the inputs;
* :func:`save_image` and :class:`VideoWriter` -- annotated pictures and video (PyAV).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from detforge.errors import DetforgeError
from detforge.utils.io import atomic_open

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset


class InputGuard:
    """Refuses to write over a user's inputs: the source images and the label files Darknet
    and Ultralytics would read for them (an ``--out`` that points into the dataset must never
    replace ``img.jpg`` with its annotated picture or ``labels/img.txt`` with predictions).

    ``files``: other files the command reads (a ``.data`` file, its lists and names, an input
    list); ``folders``: folders it walks, in which every existing file is an input. Paths are
    compared as :mod:`detforge.utils.paths` compares them (absolute, their folders resolved),
    so a link to a folder, or ``a/../a``, does not get around it.

    The label rules (:func:`~detforge.formats.darknet.label_path_candidates`) are applied to
    each image path made absolute, as given and with its folder resolved: a relative
    ``images/a.jpg`` (a folder or image SOURCE given from inside the dataset) has no
    ``/images/`` in it, yet Darknet and Ultralytics read ``labels/a.txt`` for it once it is
    made absolute (``predict images --out . --save-txt`` must not write over them).
    """

    def __init__(
        self,
        image_paths: Sequence[str],
        *,
        files: Iterable[str | os.PathLike[str]] = (),
        folders: Iterable[str | os.PathLike[str]] = (),
    ) -> None:
        from detforge.formats.darknet import label_path_candidates
        from detforge.utils.paths import PathResolver

        self._resolver = PathResolver()
        protected: set[str] = set()
        for p in image_paths:
            protected.add(self._key(p))
            for form in {os.path.abspath(p), self._resolver.real(p)}:
                protected.update(self._key(c) for c in label_path_candidates(form))
        protected.update(self._key(f) for f in files)
        self._protected = protected
        self._folders = [os.path.normcase(self._resolver.folder(f)) for f in folders]

    def _key(self, path: str | os.PathLike[str]) -> str:
        """What ``path`` shares with every other spelling of it
        (:meth:`~detforge.utils.paths.PathResolver.key`)."""
        return self._resolver.key(path)

    def protects(self, path: str | os.PathLike[str]) -> bool:
        """Whether writing ``path`` could replace one of the inputs."""
        key = self._key(path)
        if key in self._protected:
            return True
        inside = any(key.startswith(f.rstrip(os.sep) + os.sep) for f in self._folders)
        return inside and os.path.lexists(path)

    def check(self, path: str | os.PathLike[str], *, option: str = "") -> Path:
        """``path`` as a Path, or a DetforgeError if writing it would overwrite an input
        (``option``: the option that named ``path``, for the message)."""
        if self.protects(path):
            if option:
                raise DetforgeError(
                    f"{option} names one of this command's input files; detforge never "
                    "overwrites its input (give a new file outside the dataset)",
                    path=path,
                )
            raise DetforgeError(
                "refusing to overwrite an input file; choose an --out folder outside the "
                "dataset's image and label folders",
                path=path,
            )
        return Path(path)


def model_files(
    weights: str | os.PathLike[str],
    *,
    cfg: str | os.PathLike[str] | None = None,
    names: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """The files a model argument may read: ``weights``, the same-stem ``.cfg`` and ``.names``
    beside it (a Darknet network finds them there), and ``cfg`` / ``names`` when given."""
    w = Path(weights)
    files = [w, w.with_suffix(".cfg"), w.with_suffix(".names")]
    return files + [Path(f) for f in (cfg, names) if f]


def dataset_guard(
    datasets: Iterable[Dataset],
    *,
    files: Iterable[str | os.PathLike[str] | None] = (),
    folders: Iterable[str | os.PathLike[str]] = (),
) -> InputGuard:
    """An :class:`InputGuard` of what a command reads of ``datasets``: their images and the
    label files beside them, each source (a ``.data`` file, a list, a JSON; every file in a
    source folder) and a ``.data`` file's lists, names and difficult list; plus ``files``
    (``None`` entries skipped: an option not given) and ``folders``."""
    named = [Path(f) for f in files if f is not None]
    walked = [Path(f) for f in folders]
    images: list[str] = []
    for ds in datasets:
        images += [str(p) for p in ds.images.path]
        source = ds.meta.get("source")
        if source:
            (walked if os.path.isdir(str(source)) else named).append(Path(str(source)))
        data_file = ds.meta.get("data_file")
        for key in ("train", "valid", "test", "names", "difficult"):
            value = getattr(data_file, key, None)
            if value:
                (walked if os.path.isdir(value) else named).append(Path(value))
    return InputGuard(images, files=named, folders=walked)


def save_image(path: str | os.PathLike[str], image: Any, *, quality: int = 90) -> None:
    """Save a Pillow image atomically; the format follows the suffix (JPEG at ``quality``)."""
    p = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}.get(
        p.suffix.lower()
    )
    if fmt is None:
        raise DetforgeError("unsupported picture suffix; use .jpg, .png, .webp or .bmp", path=p)
    kwargs: dict[str, Any] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with atomic_open(p, "wb") as f:
        image.save(f, format=fmt, **kwargs)


class VideoWriter:
    """Write ``(H, W, 3)`` uint8 RGB frames to a video file with PyAV (H.264 when available,
    else MPEG-4 Part 2), atomically: frames go to a temporary file renamed on :meth:`close`.

    Frame sizes are padded to even numbers (a requirement of the yuv420p pixel format) with
    black; every frame must have the size of the first. Use as a context manager; an exception
    inside the ``with`` block discards the partial file.
    """

    def __init__(self, path: str | os.PathLike[str], *, fps: float = 25.0) -> None:
        from detforge.predict.sources import _import_av

        self._av = _import_av()
        self.path = Path(path)
        self.fps = fps if fps > 0 else 25.0
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.stem}.", suffix=self.path.suffix or ".mp4", dir=self.path.parent
        )
        os.close(fd)
        self._tmp = Path(tmp)
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None

    def _open(self, width: int, height: int) -> None:
        from fractions import Fraction

        av = self._av
        self._container = av.open(str(self._tmp), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": "23", "preset": "veryfast"}
        self._size = (width, height)

    def write(self, frame: ArrayLike) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame."""
        arr = np.asarray(frame, dtype=np.uint8)
        h, w = arr.shape[:2]
        if self._size is None:
            self._open(w, h)
        elif self._size != (w, h):
            raise ValueError(f"frame size {w}x{h} differs from the first frame's {self._size}")
        if w % 2 or h % 2:
            arr = np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)))
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file to ``path``."""
        if self._container is None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            raise DetforgeError("no frames to write", path=self.path)
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        """Stop and remove the partial file."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
