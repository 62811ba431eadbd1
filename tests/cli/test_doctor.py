"""``detforge doctor`` on this CPU-only machine: versions, a clean 'no CUDA', exit 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from detforge.cli.main import main


def test_doctor_reports_versions_and_no_cuda(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--json", str(tmp_path / "d.json")])
    out = capsys.readouterr().out
    assert f"torch                  {torch.__version__}" in out
    assert "python" in out and "cuDNN" in out
    report = json.loads((tmp_path / "d.json").read_text())
    if torch.cuda.is_available():  # pragma: no cover - CI has no GPU
        assert "CUDA op test" in report["facts"]
    else:
        assert code == 0 and "no CUDA" in out and report["gpus"] == []
        assert report["facts"]["torch built for CUDA"] == (
            torch.version.cuda or "none (CPU-only build)"
        )


def test_cudnn_version_text() -> None:
    from detforge.utils.doctor import _cudnn_str

    assert _cudnn_str(92400) == "9.24.0"
    assert _cudnn_str(8902) == "8.9.2"
