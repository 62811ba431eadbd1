"""Giving a (fine-tuned) network back as <name>.cfg/.weights/.names: it reloads in our loader and
in OpenCV's importer with equal outputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detforge.errors import DetforgeError
from detforge.models.darknet.export import export_darknet
from detforge.models.darknet.model import forward_rows, load_darknet
from detforge.models.darknet.preprocess import darknet_input
from detforge.models.darknet.weights import weights_bytes
from tests.models.darknet.helpers import assert_rows_match, ours_and_opencv


def _fine_tune(net: torch.nn.Module, x: torch.Tensor, steps: int = 3) -> None:
    """A few optimizer steps in train mode: weights and BN running statistics move."""
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(r.sigmoid().mean() for r in net(x))
        assert isinstance(loss, torch.Tensor)
        loss.backward()
        opt.step()
    net.eval()


def test_fine_tuned_export_reloads_with_equal_outputs(
    yolov3_tiny: Path, tmp_path: Path, photo: np.ndarray
) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    src_weights = yolov3_tiny / "yolov3-tiny.weights"
    net = load_darknet(yolov3_tiny / "yolov3-tiny.cfg", src_weights)
    x = darknet_input(photo, *net.input_size)
    before = forward_rows(net, x)
    _fine_tune(net, x)
    after = forward_rows(net, x)
    assert (after - before).abs().max() > 1e-3  # the fine-tuning changed the network
    names = (yolov3_tiny / "coco.names").read_text().splitlines()
    paths = export_darknet(net, tmp_path / "out", "tuned", names)
    assert sorted(p.name for p in paths.values()) == ["tuned.cfg", "tuned.names", "tuned.weights"]
    assert paths["names"].read_text().splitlines() == names
    assert paths["weights"].read_bytes() != src_weights.read_bytes()
    again = load_darknet(paths["cfg"], paths["weights"])
    assert weights_bytes(again) == paths["weights"].read_bytes()
    assert torch.equal(forward_rows(again, x), after)
    ours, ref = ours_and_opencv(again, paths["cfg"], paths["weights"], x)
    assert_rows_match(ours, ref)


def test_export_cuts_comments_after_values(
    yolov3_tiny: Path, tmp_path: Path, photo: np.ndarray
) -> None:
    """A cfg with a comment after every value (``activation=leaky # x``: detforge reads
    leaky, darknet and OpenCV would not) is written back without them: OpenCV's importer
    builds the same network from the exported cfg, comment lines kept."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    lines = (yolov3_tiny / "yolov3-tiny.cfg").read_text().splitlines()
    commented = [
        f"{line}   # was {line.split('=')[0].strip()}" if "=" in line and line[:1] != "#" else line
        for line in lines
    ]
    cfg = tmp_path / "commented.cfg"
    cfg.write_text("# a comment line\n" + "\r\n".join(commented) + "\r\n")
    net = load_darknet(cfg, yolov3_tiny / "yolov3-tiny.weights")
    names = (yolov3_tiny / "coco.names").read_text().splitlines()
    paths = export_darknet(net, tmp_path / "out", "clean", names)
    text = paths["cfg"].read_bytes().decode()
    assert text.startswith("# a comment line\n") and "# was" not in text
    assert "activation=leaky\r\n" in text  # line endings kept
    x = darknet_input(photo, *net.input_size)
    ours, ref = ours_and_opencv(net, paths["cfg"], paths["weights"], x)
    assert_rows_match(ours, ref)


def test_export_refuses_overwrite_and_wrong_names(yolov3_tiny: Path, tmp_path: Path) -> None:
    net = load_darknet(yolov3_tiny / "yolov3-tiny.cfg")
    with pytest.raises(DetforgeError, match="3 class names for a network with classes=80"):
        export_darknet(net, tmp_path, "m", ["a", "b", "c"])
    names = [f"c{i}" for i in range(80)]
    export_darknet(net, tmp_path, "m", names)
    with pytest.raises(DetforgeError, match="already exists"):
        export_darknet(net, tmp_path, "m", names)
