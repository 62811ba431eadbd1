"""Dataset checks and repair: every problem as a :class:`Finding` with a stable code.

``check_dataset(source)`` returns a :class:`CheckReport`; ``fix_dataset(source, out_dir)``
writes a repaired copy. The codes are documented in ``docs/checks.md``.
"""

from __future__ import annotations

from detforge.check.api import check_dataset
from detforge.check.findings import CODES, CheckReport, Finding
from detforge.check.fix import FixReport, fix_dataset
from detforge.check.limits import CheckLimits

__all__ = [
    "CODES",
    "CheckLimits",
    "CheckReport",
    "Finding",
    "FixReport",
    "check_dataset",
    "fix_dataset",
]
