"""Test data and the headless browser for the report tests.

The browser is Debian's ``chromium`` package (``apt-get install chromium``), driven either
from its command line (``--headless --dump-dom``) or through Playwright pointed at that same
executable (``pip install playwright``; no browser is downloaded). Missing either is a test
failure that says what to install, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat

INSTALL = (
    "the report tests need a headless Chromium: 'apt-get install -y chromium' (Debian/Ubuntu; "
    "'make test' does it when run as root) or set DETFORGE_CHROMIUM=/path/to/chrome"
)


def chromium_path() -> str:
    """The Chromium executable, or a test failure saying how to install one."""
    for cand in (os.environ.get("DETFORGE_CHROMIUM"), "chromium", "chromium-browser"):
        if cand and (found := shutil.which(cand)):
            return found
    pytest.fail(INSTALL)


def dump_dom(index: Path) -> str:
    """The DOM of ``index`` after its scripts ran, from ``chromium --headless --dump-dom``."""
    cmd = [
        chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--virtual-time-budget=10000", "--dump-dom", index.resolve().as_uri(),
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@contextmanager
def browser_page(index: Path, requests: list[str]) -> Iterator[Any]:
    """A Playwright page on ``index`` (system Chromium), every requested URL appended to
    ``requests``; yields once the report signalled it is ready (``body[data-ready]``)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the report tests need Playwright: pip install 'playwright>=1.40' (the dev "
            "extra has it; it drives the system Chromium, nothing is downloaded)"
        )
    exe = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(index.resolve().as_uri())
            page.wait_for_selector("body[data-ready]", timeout=20000)
            yield page
            assert errors == [], errors
        finally:
            browser.close()


def write_predictions(gt: Any, folder: Path, *, seed: int, miss: float, swap: float) -> None:
    """Fake detections from the ground truth: each box jittered (sigma 1.5% of the image),
    dropped with probability ``miss``, its class changed with probability ``swap``, and a
    random extra box on some images; ``class cx cy w h conf`` .txt files per image."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    xywh = gt.coords_as(BoxFormat.CXCYWH_NORM)
    k = gt.num_classes
    for i, path in enumerate(gt.images.path.tolist()):
        lines = []
        for b in np.flatnonzero(gt.boxes.image == i).tolist():
            if rng.random() < miss:
                continue
            c = int(gt.boxes.cls[b])
            if rng.random() < swap:
                c = (c + 1) % k
            j = np.clip(xywh[b] + rng.normal(0, 0.015, 4), 0.01, 0.99)
            score = rng.uniform(0.3, 1)
            lines.append(f"{c} {j[0]:.6f} {j[1]:.6f} {j[2]:.6f} {j[3]:.6f} {score:.4f}")
        if rng.random() < 0.3:
            lines.append(f"{int(rng.integers(k))} 0.5 0.5 0.2 0.2 {rng.uniform(0.05, 0.95):.4f}")
        (folder / (Path(path).stem + ".txt")).write_text("".join(s + "\n" for s in lines))
