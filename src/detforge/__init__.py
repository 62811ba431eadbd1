"""detforge: from a folder of labelled images to a trained, evaluated object detector.

Importing this package does nothing but define names: heavy modules (PyTorch, plotting) are
imported by the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load"]

if TYPE_CHECKING:  # pragma: no cover
    from detforge.predict.api import load


def __getattr__(name: str) -> Any:
    # Deferred so that ``import detforge`` stays cheap and free of torch.
    if name == "load":
        from detforge.predict.api import load

        return load
    raise AttributeError(f"module 'detforge' has no attribute {name!r}")
