"""Fixtures every reliability test uses."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh index cache per test: damaged-cache cases never leak into other tests."""
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path_factory.mktemp("cache")))
