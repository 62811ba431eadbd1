"""Writing matplotlib figures: one place, atomic, and without touching pyplot's global state.

Plots are built on :class:`matplotlib.figure.Figure` directly (never ``pyplot``), so detforge
neither switches the user's backend nor leaves figures open in a notebook.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from detforge.utils.io import atomic_open


def save_figure(
    fig: Any, path: str | os.PathLike[str], *, dpi: int = 110, tight: bool = False
) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically (temp file + rename); returns the path.

    ``tight`` crops to the drawn content (``bbox_inches="tight"``).
    """
    extra: dict[str, Any] = {"bbox_inches": "tight"} if tight else {}
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi, **extra)
    return Path(path)
