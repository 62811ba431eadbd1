"""Shared fixtures: where the read-only reference data lives, and tiny generated datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REF_DATA = REPO / "tests" / "assets"


@pytest.fixture(scope="session")
def ref_data() -> Path:
    """``tests/assets``: small real reference datasets kept in the repository (licences and
    provenance in ``tests/assets/README.md``). Read only; write into ``tmp_path``."""
    if not (REF_DATA / "bccd" / "Annotations").is_dir():
        pytest.fail(f"reference data missing at {REF_DATA}: the checkout is incomplete")
    return REF_DATA


@pytest.fixture(autouse=True)
def _isolated_detforge_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the dataset index cache (``$DETFORGE_CACHE``) inside pytest's temporary folder,
    never in the developer's ``~/.cache``."""
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "detforge-cache"))


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for a test module: the CI box has 2 shared cores, and the tiny
    convolutions of these tests only lose from more. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=["os.stat", "C helper"])
def stat_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once with the ``os.stat`` loop and once with the optional C batch stat of
    :mod:`detforge.utils.filestat` (skipped, and so reported, where it was not built)."""
    from detforge.utils import filestat

    if request.param == "C helper":
        if not filestat.native_available():
            pytest.skip("detforge.utils._cstat was not built (no C compiler at install time)")
    else:
        monkeypatch.setattr(filestat, "_NATIVE", None)
    return str(request.param)
