"""What the demo's steps share: the :class:`DemoRun` state and the in-process ``detforge``
call (:func:`cli`). The steps live in ``demo.py`` (dataset basics), ``demo_data.py``,
``demo_model.py`` and ``demo_predict.py``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detforge.errors import DetforgeError


@dataclass
class DemoRun:
    """State shared by the steps: the output folder and the files earlier steps produced."""

    out: Path
    images: int = 60
    seed: int = 0
    train_seconds: float = 90.0
    files: dict[str, Path] = field(default_factory=dict)


def cli_status(argv: Sequence[str], *, stdout: Path | None = None) -> int:
    """Run one ``detforge`` command in-process (its output saved to ``stdout`` if given) and
    return its exit status."""
    import contextlib

    from detforge.cli.main import main

    shown = " ".join(argv) + (f" > {stdout}" if stdout is not None else "")
    print(f"$ detforge {shown}", flush=True)
    if stdout is None:
        return main(list(argv))
    with open(stdout, "w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
        return main(list(argv))


def cli(argv: Sequence[str], *, stdout: Path | None = None) -> None:
    """Like :func:`cli_status`, but a non-zero status stops the demo."""
    status = cli_status(argv, stdout=stdout)
    if status != 0:
        shown = " ".join(argv)
        raise DetforgeError(f"demo step 'detforge {shown}' exited with status {status}")
