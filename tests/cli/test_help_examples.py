"""Every example in every command's --help, and the README's tour, as written.

The examples are parsed out of each command's DESCRIPTION and out of README.md's tour, and run
in a workspace folder laid out like the examples assume (``data/obj.data``,
``runs/train/obj/weights/best.pt``, ``best.pt``, ``best.onnx``, ``photos/``, a small Darknet
``yolov4-tiny.cfg``/``.weights``, ...), all generated: a 16-image shapes dataset and a
random-but-lively checkpoint with the dataset's classes.

Every example is parsed by the real parser (so an example in an order or spelling the CLI no
longer takes fails). Most are also executed; the ones that are only parsed are listed in
``PARSE_ONLY`` with the reason: they need a GPU (``--device cuda``, ``--half``), a video, a
file detforge cannot generate here (a stock ``yolov4.cfg``, TF pipeline configs, paths
outside the workspace such as ``/mnt/data`` or ``../bccd``), or a long run
(the demo, the LR finder, a resumed run). Training examples run with ``--epochs 1 --imgsz 64``
appended (the last option wins) to stay within the test's time.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from detforge.cli.main import COMMANDS, _load, build_parser, main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

ROOT = Path(__file__).resolve().parents[2]

TIMES: list[tuple[float, str]] = []

PARSE_ONLY = {
    "--device cuda": "needs a GPU",
    "--half": "float16 export/inference needs a GPU",
    ".mp4": "needs a video",
    "detforge demo ": "runs the whole demo (tests/cli/test_demo*.py run it)",
    "--lr auto": "the LR range test trains for a while",
    "/mnt/data": "a path outside the workspace",
    "../bccd": "a path outside the workspace (the real BCCD dataset)",
    "VOCdevkit": "a downloaded VOC dataset",
    ".record": "TFRecords of a real dataset",
    "--pipeline": "a TF object-detection pipeline.config",
    "yolov4.cfg": "a stock darknet cfg",
    "lr-find": "the LR range test trains for minutes",
    "--resume": "needs an interrupted run",
    "--weights runs/": "fine-tuning, a second training run",
    ".conv.29": "pretrained Darknet weights (a download)",
    "--run runs/train/obj-3": "needs a third training run",
    "lists data/train -o": "would replace the dataset's own data/train.txt",
    "frames/obj.data": "a dataset of video frames",
    "cells/obj.data": "a microscopy dataset",
    "--to darknet --out": "a Darknet checkpoint (from training a .cfg network), or see below",
}
RUN_ANYWAY = ("yolov4-tiny.weights --names obj.names --to darknet", "demo --list-steps")
"""Examples matched by PARSE_ONLY that run all the same."""


def _examples(text: str) -> list[str]:
    """The ``detforge ...`` lines of ``text`` (continuations joined, comments dropped)."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        s = line.strip()
        if s.startswith("detforge "):
            found.append(re.sub(r"\s+#.*$", "", s))
    return found


def help_examples() -> list[tuple[str, str]]:
    return [(name, ex) for name in COMMANDS for ex in _examples(_load(name).DESCRIPTION)]


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    tour = text.split("## A tour of the command line", 1)[1].split("```", 2)[1]
    return _examples(tour)


def _parse_only(example: str) -> str | None:
    if any(keep in example for keep in RUN_ANYWAY):
        return None
    padded = example + " "
    return next((why for key, why in PARSE_ONLY.items() if key in padded), None)


def _commands(example: str) -> list[tuple[list[str], str | None]]:
    """``(argv, stdout_file)`` of each command of an example (``&&``, ``|``, ``>`` handled:
    a pipe's right side is not detforge's; ``> FILE`` captures stdout)."""
    out = []
    for part in example.split("&&"):
        words = shlex.split(part.split("|")[0])
        target = None
        if ">" in words:
            i = words.index(">")
            words, target = words[:i], words[i + 1]
        assert words[0] == "detforge"
        argv = words[1:]
        if argv[0] == "train":
            argv += ["--epochs", "1", "--imgsz", "64", "--workers", "0"]
        out.append((argv, target))
    return out


def _darknet_model(cfg: Path) -> None:
    """A small 3-class Darknet network (cfg + random weights beside it)."""
    from detforge.models.darknet.model import load_darknet
    from detforge.models.darknet.weights import write_weights
    from tests.models.darknet.helpers import TINY_CFG, randomize

    text = TINY_CFG.format(nms_kind="greedynms")
    cfg.write_text(text.replace("filters=21", "filters=24").replace("classes=2", "classes=3"))
    net = load_darknet(cfg)
    randomize(net, np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8))
    write_weights(net, cfg.with_suffix(".weights"))


def _workspace(root: Path, *, trained: bool) -> Path:
    """The files the examples name (see the module docstring)."""
    from detforge.data.synthetic import generate_shapes_dataset
    from tests.predict.helpers import CLASS_NAMES, random_checkpoint

    root.mkdir(parents=True)
    data = generate_shapes_dataset(root / "data", num_images=16, seed=2)
    generate_shapes_dataset(root / "old", num_images=12, seed=5)
    for folder in ("data", "old"):  # the checkpoint's class names (3 classes, as the shapes)
        (root / folder / "obj.names").write_text("".join(f"{n}\n" for n in CLASS_NAMES))
    images = sorted((root / "data" / "images").rglob("*.jpg"))
    clips = [(f"data/frames/clip{i:02d}", [im]) for i, im in enumerate(images[:12])]
    for folder, chosen in (("photos", images[:3]), *clips, ("data/cam1", images[:4]),
                           ("data/cam2", images[4:8]), ("frames", images[8:12])):  # fmt: skip
        (root / folder).mkdir(parents=True)
        for im in chosen:
            shutil.copy(im, root / folder / im.name)
            if im.with_suffix(".txt").exists():
                shutil.copy(im.with_suffix(".txt"), root / folder / im.with_suffix(".txt").name)
    shutil.copy(data.parent / "obj.names", root / "data" / "frames" / "obj.names")
    (root / "obj.data").write_text(  # a .data file in the working folder, as Darknet keeps one
        "classes = 3\ntrain = data/train.txt\nvalid = data/valid.txt\nnames = data/obj.names\n"
    )
    (root / "train.txt").write_text("".join(f"{p}\n" for p in images))
    _darknet_model(root / "yolov4-tiny.cfg")
    (root / "obj.names").write_text("".join(f"{n}\n" for n in CLASS_NAMES))
    ckpt = random_checkpoint(root / "best.pt", imgsz=64)
    if trained:
        (root / "runs" / "train" / "obj" / "weights").mkdir(parents=True)
        shutil.copy(ckpt, root / "runs" / "train" / "obj" / "weights" / "best.pt")
    return root


def _run(argv: list[str], target: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    t0 = time.perf_counter()
    code = main(argv)
    TIMES.append((time.perf_counter() - t0, " ".join(argv)))
    out, err = capsys.readouterr()
    ok = (0, 1) if argv[0] == "check" else (0,)  # check: 1 = it found something
    assert code in ok, f"detforge {' '.join(argv)} -> {code}: {err.strip()[-500:]}"
    if target is not None:
        Path(target).write_text(out)


def test_every_example_parses() -> None:
    examples = [ex for _, ex in help_examples()] + readme_examples()
    assert len(examples) > 60
    parser = build_parser()
    for ex in examples:
        for argv, _ in _commands(ex):
            try:
                parser.parse_args(argv)
            except SystemExit as e:  # argparse: exit 2 with the reason on stderr
                raise AssertionError(f"does not parse: {ex}") from e


def test_help_examples_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from detforge.cli.main import main as cli

    monkeypatch.chdir(_workspace(tmp_path / "ws", trained=True))
    # What examples read that other commands make: a predictions folder, results files.
    assert cli(["export", "best.pt", "-o", "best.onnx"]) == 0
    setup = ["predict", "best.pt", "data/obj.data", "--save-txt", "--conf", "0.05"]
    assert cli([*setup, "--out", "runs/predict/obj"]) == 0
    assert cli([*setup, "--save-json", "a.json", "--out", "tmp-pred"]) == 0
    for name in ("b.json", "preds.json"):
        shutil.copy("a.json", name)
    shutil.copytree("runs/predict/obj/labels", "results")
    # COCO files as the examples name them: converted from the dataset, with their images
    assert cli(["convert", "data/obj.data", "coco", "--to", "coco"]) == 0
    Path("annotations").mkdir()
    shutil.copy("coco/annotations/instances_val.json", "annotations/instances_val2017.json")
    for name in ("val", "train"):
        shutil.copy(f"coco/annotations/instances_{name}.json", f"instances_{name}.json")
    shutil.copytree("coco/val", "val2017")
    for im in Path("val2017").iterdir():  # show has no --images-dir: beside the JSON
        shutil.copy(im, im.name)
    shutil.copytree("coco/train", "coco/train2017")
    assert cli(["predict", "best.pt", "data/obj.data", "--save-json", "detections.json"]) == 0
    for suffix in (".json", ".meta.json"):
        shutil.copy(f"detections{suffix}", f"dets{suffix}")
    capsys.readouterr()
    ran = 0
    # export first: map and predict examples read best.onnx / runs/train/obj/weights/best.onnx
    order = sorted(help_examples(), key=lambda e: e[0] != "export")
    for _, ex in order:
        if _parse_only(ex) is not None:
            continue
        for argv, target in _commands(ex):
            _run(argv, target, capsys)
        ran += 1
    assert ran >= 35


def test_readme_tour_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(_workspace(tmp_path / "ws", trained=False))
    ran = 0
    for ex in readme_examples():
        if _parse_only(ex) is not None:
            continue
        for argv, target in _commands(ex):
            _run(argv, target, capsys)
        ran += 1
    assert ran >= 12
    assert Path("runs/train/obj/weights/best.pt").is_file()
    assert Path("report/index.html").is_file()


def teardown_module() -> None:
    """The slowest commands, shown with ``pytest -s`` (to keep this file near 2 minutes)."""
    for seconds, cmd in sorted(TIMES, reverse=True)[:8]:
        print(f"{seconds:6.1f} s  {cmd}")
