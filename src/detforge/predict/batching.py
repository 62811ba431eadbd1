"""Batching for inference: a batch of differently sized images made one network input by the
letterbox rule (:class:`detforge.data.letterbox.InputRule`), and reading the next batch in a
background thread while the current one runs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from detforge.data.letterbox import InputRule, RatioPad
from detforge.predict.sources import Frame

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
    """Iterate ``items``: the first two in the caller's thread, the rest in a background
    thread up to ``depth`` items ahead, so decoding the next batch (Pillow and PyAV release
    the GIL) overlaps the current forward pass. Exceptions reach the consumer in order;
    stopping early stops the thread.

    The first items are made here because a one-image call would otherwise wait for a thread
    to start (or start one for nothing, ~0.2 ms), and torch ops in a new thread start a new
    OpenMP team (~3 ms on a CPU)."""
    import queue
    import threading

    try:
        yield next(items)
        first = next(items)  # the second: a one-item call ends here, no thread started
    except StopIteration:
        return

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
        yield first
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
    frames: Sequence[Frame], rule: InputRule
) -> tuple[NDArray[np.uint8], list[RatioPad]]:
    """The ``(B, H, W, 3)`` uint8 network input for ``frames`` under ``rule`` (each image
    letterboxed on its own into ``rule.shape``, so no image depends on its batch mates), and
    each frame's ``ratio_pad`` from its full-resolution pixels to input pixels."""
    out = np.empty((len(frames), rule.height, rule.width, 3), dtype=np.uint8)
    maps: list[RatioPad] = []
    for i, f in enumerate(frames):
        out[i], ratio_pad = rule.apply(f.image, f.orig_shape)
        maps.append(ratio_pad)
    return out, maps
