"""Shared fixtures: where the read-only reference data lives, and tiny generated datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (read-only; CI has it too)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"reference data not found at {SHARED_DATA}: the checkout needs ../shared beside it"
        )
    return SHARED_DATA
