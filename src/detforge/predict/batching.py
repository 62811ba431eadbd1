"""Batching for inference: letterboxing a batch of differently sized images, and reading the
next batch in a background thread while the current one runs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from detforge.predict.sources import Frame

STRIDE = 32
"""The detector's largest stride: network inputs are multiples of it."""

T = TypeVar("T")


def batched(items: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for f in items:
        batch.append(f)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Failed:
    """An exception raised in the prefetch thread, to re-raise in the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead, so decoding the
    next batch (Pillow and PyAV release the GIL) overlaps the current forward pass. Exceptions
    reach the consumer in order; stopping early stops the thread."""
    import queue
    import threading

    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(obj: object) -> bool:
        while not stop.is_set():
            try:
                q.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer
            put(_Failed(exc))
            return
        put(done)

    thread = threading.Thread(target=work, name="detforge-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            obj = q.get()
            if obj is done:
                return
            if isinstance(obj, _Failed):
                raise obj.exc
            yield obj  # type: ignore[misc]
    finally:
        stop.set()


def letterbox_batch(
    images: Sequence[NDArray[np.uint8]], imgsz: int, *, fixed: tuple[int, int] | None = None
) -> tuple[NDArray[np.uint8], list[tuple[tuple[float, float], tuple[float, float]]]]:
    """Letterbox ``(H_i, W_i, 3)`` uint8 images into one ``(B, h, w, 3)`` uint8 batch.

    Each image is scaled to ``imgsz`` on its long side and centred in the next multiple of 32
    (``fixed = (h, w)``: scaled to fit and centred in exactly that size); smaller members are
    padded further at the bottom/right. Returns the batch and each image's
    ``(ratio (rx, ry), pad (left, top))``: input pixel = original pixel * ratio + pad.
    """
    from detforge.train.augment import FILL, letterbox

    boxed = [
        letterbox(im, shape=fixed or imgsz, auto=fixed is None, stride=STRIDE) for im in images
    ]
    h = max(b.image.shape[0] for b in boxed)
    w = max(b.image.shape[1] for b in boxed)
    out = np.full((len(boxed), h, w, 3), FILL, dtype=np.uint8)
    for i, b in enumerate(boxed):
        out[i, : b.image.shape[0], : b.image.shape[1]] = b.image
    return out, [(b.ratio, b.pad) for b in boxed]
