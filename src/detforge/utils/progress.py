"""Progress of long work, the one home for it: a tqdm bar on a terminal, a line at a steady
interval anywhere else (nohup, CI, a log file), so a long command is never silent for minutes.

* :func:`progress` -- wrap an iterable: a bar on a TTY, else every ``interval`` seconds a line
  ``desc: 1200/5000 images (24%), 310 images/s, ETA 12s``; ``enabled=False`` is silent.
* :class:`Ticker` -- the interval logic on its own, for loops that build their own line
  (the trainer: epoch, step, losses, images/s, ETA). Takes a clock, so tests need no sleeping.
* :func:`format_duration` -- ``75`` -> ``1m15s``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

Clock = Callable[[], float]
"""Seconds from an arbitrary origin (``time.monotonic``); tests pass a fake one."""

INTERVAL = 30.0
"""Seconds between two progress lines when not on a terminal."""


def stderr_is_tty() -> bool:
    """Whether stderr is a terminal (bars there; lines otherwise)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def format_duration(seconds: float) -> str:
    """``4`` -> ``4s``, ``75`` -> ``1m15s``, ``3725`` -> ``1h02m``; ``?`` when unknown."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def eta_seconds(done: float, total: float, elapsed: float) -> float:
    """Seconds left at the rate so far (``nan`` before the first unit is done)."""
    if done <= 0 or elapsed <= 0:
        return float("nan")
    return max(total - done, 0.0) * elapsed / done


class Ticker:
    """Calls ``write(line())`` at most once every ``interval`` seconds of ``clock``.

    ``line`` is a function so that building the text costs nothing between lines.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        interval: float = INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        self.write, self.interval, self.clock = write, interval, clock
        self.last = clock()

    def __call__(self, line: Callable[[], str]) -> bool:
        """Write a line if ``interval`` has passed since the last one; returns whether it did."""
        now = self.clock()
        if now - self.last < self.interval:
            return False
        self.last = now
        self.write(line())
        return True


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def progress(
    items: Iterable[T],
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool | None = None,
    interval: float = INTERVAL,
    clock: Clock = time.monotonic,
    write: Callable[[str], None] | None = None,
) -> Iterator[T]:
    """Iterate ``items`` showing progress.

    ``enabled=None``: a tqdm bar on stderr when it is a terminal, else a line every
    ``interval`` seconds (to ``write``, default stderr); ``True``: always the bar; ``False``:
    nothing.
    """
    if enabled is False:
        yield from items
        return
    if enabled is None and not stderr_is_tty():
        tick = Ticker(write or _stderr_line, interval=interval, clock=clock)
        yield from _lines(items, total, desc, unit, tick)
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def _lines(
    items: Iterable[T], total: int | None, desc: str, unit: str, tick: Ticker
) -> Iterator[T]:
    start = tick.last
    done = 0

    def line() -> str:
        elapsed = tick.clock() - start
        rate = done / elapsed if elapsed > 0 else 0.0
        head = f"{desc}: " if desc else ""
        if total:
            left = format_duration(eta_seconds(done, total, elapsed))
            return (f"{head}{done}/{total} {unit} ({done / total:.0%}), {rate:.1f} {unit}/s, "
                    f"ETA {left}")  # fmt: skip
        return f"{head}{done} {unit}, {rate:.1f} {unit}/s"

    for item in items:
        yield item
        done += 1
        tick(line)
