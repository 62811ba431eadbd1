"""TensorBoard scalars, when the ``tensorboard`` package is installed.

:func:`create_writer` returns a :class:`ScalarLog` that writes through
``torch.utils.tensorboard.SummaryWriter`` or, when TensorBoard is missing, does nothing after
saying so once (training never fails for want of a plotting extra).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


class ScalarLog:
    """``add(tag, value, step)`` / ``close()``; a no-op when ``writer`` is ``None``."""

    def __init__(self, writer: Any | None) -> None:
        self._writer = writer

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def add(self, tag: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, float(value), step)

    def add_many(self, values: dict[str, Any], step: int) -> None:
        """Every numeric value of ``values`` under its own tag."""
        for k, v in values.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                self.add(k, float(v), step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def create_writer(log_dir: Path, *, enabled: bool = True, note: Any = print) -> ScalarLog:
    """A :class:`ScalarLog` writing event files into ``log_dir``.

    ``note`` receives one line when TensorBoard is not installed (and ``enabled``).
    """
    if not enabled:
        return ScalarLog(None)
    if not tensorboard_available():
        note("TensorBoard not installed: skipping event files (pip install tensorboard)")
        return ScalarLog(None)
    from torch.utils.tensorboard import SummaryWriter

    return ScalarLog(SummaryWriter(log_dir=str(log_dir)))
