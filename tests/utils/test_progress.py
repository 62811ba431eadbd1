"""Progress off a terminal: a line at a steady interval (fake clock), nothing in between."""

from __future__ import annotations

import pytest

from detforge.utils.progress import Ticker, eta_seconds, format_duration, progress


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_format_duration_and_eta() -> None:
    assert [format_duration(s) for s in (4, 75, 3725, float("nan"))] == ["4s", "1m15s", "1h02m",
                                                                          "?"]  # fmt: skip
    assert eta_seconds(25, 100, 10.0) == 30.0
    assert eta_seconds(0, 100, 10.0) != eta_seconds(0, 100, 10.0)  # nan before the first unit


def test_ticker_writes_once_per_interval() -> None:
    clock, out = FakeClock(), []
    tick = Ticker(out.append, interval=30.0, clock=clock)
    for t in (10, 29.9, 30, 45, 59.9, 60.0, 200):
        clock.t = t
        tick(lambda: f"at {clock.t:g}")
    assert out == ["at 30", "at 60", "at 200"]


def test_progress_prints_lines_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    clock, out = FakeClock(), []

    def items():  # type: ignore[no-untyped-def]
        for i in range(100):
            clock.t = 2.0 * (i + 1)  # each item takes 2 s
            yield i

    got = list(progress(items(), total=100, desc="check", unit="images", clock=clock,
                        write=out.append))  # fmt: skip
    assert got == list(range(100))
    assert len(out) == 6  # at 30, 60, ... 180 s of 200
    assert out[0] == "check: 15/100 images (15%), 0.5 images/s, ETA 2m50s"
    assert capsys.readouterr().err == ""  # captured stderr is no terminal, and write= was given
    assert list(progress(range(3), enabled=False, clock=clock, write=out.append)) == [0, 1, 2]
    assert len(out) == 6
