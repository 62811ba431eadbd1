"""``detforge train`` / ``lr-find`` from the command line, in-process: help, user errors as
one line with exit 2, the dataset check before the first step, --skip-bad, the LR range test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from detforge.cli.main import main
from detforge.data.synthetic import generate_shapes_dataset


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(tmp_path: Path) -> Path:
    return generate_shapes_dataset(
        tmp_path / "ds", num_images=10, imgsz=(64, 64), seed=0, splits=(0.8, 0.2, 0.0),
        negatives=0.0, max_objects=2,
    )  # fmt: skip


FAST = [
    "--imgsz", "64", "--batch", "4", "--workers", "0", "--mosaic", "0", "--close-mosaic", "0",
    "--warmup-min-iters", "2", "--no-plots", "--no-tensorboard", "--no-progress",
]  # fmt: skip


def test_help_lists_the_commands_without_importing_torch() -> None:
    code = (
        "import sys; from detforge.cli.main import build_parser; "
        "h = build_parser().format_help(); "
        "print(all(c in h for c in ('train', 'val', 'lr-find', 'doctor')), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_train_help_has_examples_and_documented_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "torchrun --nproc_per_node" in text and "--resume" in text
    assert "--batch N|auto" in text and "[0.01]" in text and "``" not in text


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train"], "give DATA"),
        (["train", "nowhere/obj.data"], "dataset not found"),
        (["train", "x.data", "--imgsz", "100"], "multiple of 32"),
        (["train", "--resume", "nowhere"], "nothing to resume"),
        (["train", "x.data", "--nominal-batch", "0"], "--nominal-batch must be"),
        (["train", "x.data", "--warmup-epochs", "nan"], "--warmup-epochs must be"),
        (["train", "x.data", "--device", "cuda:7"] if not torch.cuda.is_available() else
         ["train", "x.data", "--device", "tpu"], "--device"),
    ],
)  # fmt: skip
def test_user_mistakes_are_one_line_and_exit_2(
    argv: list[str],
    words: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # a mistake leaves no empty run folder behind


@pytest.mark.slow
def test_dataset_check_stops_training_and_skip_bad_trains_on_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path)
    label = sorted((tmp_path / "ds" / "images" / "train").glob("*.txt"))[0]
    label.write_text(label.read_text() + "7 0.5 0.5 0.2 0.2\n")  # class 7 of 3
    before = label.read_text()
    out = tmp_path / "run"
    assert main(["train", str(data), "--out", str(out), "--epochs", "1", *FAST]) == 2
    err = capsys.readouterr().err
    assert "dataset check found" in err and "--skip-bad" in err
    assert not (out / "weights" / "last.pt").exists()

    assert not (out / "config.yaml").exists()
    out = tmp_path / "run-skip"
    assert main(["train", str(data), "--out", str(out), "--epochs", "1", "--skip-bad", *FAST]) == 0
    text = capsys.readouterr().out
    assert "--skip-bad" in text and label.name in text
    resolved = yaml.safe_load((out / "config.yaml").read_text())["resolved"]
    assert any(label.name in item for item in resolved["left_out"])
    assert (out / "weights" / "last.pt").is_file()
    assert label.read_text() == before  # source untouched


@pytest.mark.slow
def test_lr_find_recommends_a_finite_lr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    plot = tmp_path / "lr.png"
    argv = ["lr-find", str(data), "--imgsz", "64", "--batch", "4", "--steps", "15",
            "--workers", "0", "--plot", str(plot), "--device", "cpu"]  # fmt: skip
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    lr = float(out.split("recommended: --lr ")[1].split()[0])
    assert 1e-6 < lr < 1.0
    assert plot.stat().st_size > 1000


def test_lr_find_starts_from_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lr-find --weights best.pt``: the range test starts from the checkpoint it will
    fine-tune (its matching tensors loaded, as ``train --weights`` does)."""
    import detforge.train.session as session
    from tests.predict.helpers import random_checkpoint

    data = _data(tmp_path)
    ckpt = random_checkpoint(tmp_path / "best.pt")
    loaded: list[str | None] = []
    real = session.load_pretrained

    def spy(model: torch.nn.Module, cfg: object, log: object) -> None:
        loaded.append(getattr(cfg, "weights", None))
        real(model, cfg, log)  # type: ignore[arg-type]

    monkeypatch.setattr(session, "load_pretrained", spy)
    argv = ["lr-find", str(data), "--weights", str(ckpt), "--imgsz", "64", "--batch", "4",
            "--steps", "12", "--workers", "0", "--plot", str(tmp_path / "lr.png")]  # fmt: skip
    code = main(argv)
    out = capsys.readouterr().out
    assert code in (0, 1) and "tested 12 LRs" in out, out
    assert loaded == [str(ckpt)]


def test_a_missing_weights_or_cfg_file_fails_before_the_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--weights``/``--cfg`` naming no file: a one-line error that names the file (and not
    the dataset it was not read from), exit 2, and no run folder left behind; a Darknet
    network's missing weights too (they used to end in a traceback)."""
    from tests.train._darknet_tiny import write_tiny_weights

    data = _data(tmp_path)
    weights = write_tiny_weights(tmp_path / "tiny.weights", classes=3)
    cfg = str(weights.with_suffix(".cfg"))
    text = tmp_path / "nothing.txt"
    text.write_text("classes=2\n")
    cases = [
        ["--weights", str(tmp_path / "nothing.pt")],
        ["--cfg", cfg, "--weights", str(tmp_path / "nothing.weights")],
        ["--cfg", str(tmp_path / "nothing.cfg")],
        ["--cfg", cfg, "--weights", str(text)],  # there, but no model file
        ["--weights", str(weights)],  # a Darknet file without its --cfg
        ["--weights", str(tmp_path / "nothing.d")],  # a folder: it said 'was not found'
    ]
    (tmp_path / "nothing.d").mkdir()
    errs = []
    for i, extra in enumerate(cases):
        out = tmp_path / f"run{i}"
        assert main(["train", str(data), "--out", str(out), *FAST, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert ("nothing." in err or "tiny.weights" in err) and "(reading" not in err, err
        assert not out.exists(), extra
        errs.append(err)
    assert "nothing.pt: --weights file not found" in errs[0] and "not found" in errs[1]
    assert errs[5].endswith("nothing.d: is a folder; give the --weights file")
    assert "not a model file" in errs[3] and "a Darknet weights file" in errs[4]


def test_a_cfg_refused_while_building_leaves_no_empty_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cfg the network builder refuses (here: each key in its range, the parameters far
    past the limit) is one line, exit 2, and the run folder made for it is gone again (it
    used to keep an empty ``weights/``); a folder that holds files is never emptied."""
    from tests.train._darknet_tiny import tiny_cfg_text

    data = _data(tmp_path)
    cfg = tmp_path / "huge.cfg"
    text = tiny_cfg_text(3).replace("filters=8\n", "filters=16384\n", 1)
    cfg.write_text(text.replace("filters=16\n", "filters=16384\n", 1))  # 2.4e9 parameters
    out = tmp_path / "run"
    assert main(["train", str(data), "--out", str(out), *FAST, "--cfg", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "GiB" in err and "Traceback" not in err, err
    assert not out.exists()
    kept = tmp_path / "kept"
    (kept / "weights").mkdir(parents=True)
    (kept / "notes.txt").write_text("mine")
    argv = ["train", str(data), "--out", str(kept), "--exist-ok", *FAST, "--cfg", str(cfg)]
    assert main(argv) == 2
    assert (kept / "notes.txt").read_text() == "mine"


def test_lr_find_plot_never_replaces_a_file_or_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--plot`` follows claim_file (an existing file needs --exist-ok; a folder is an error)
    and never names one of the command's inputs, even with --exist-ok; all before training."""
    data = _data(tmp_path)
    other = tmp_path / "notes.txt"
    other.write_text("keep")
    (tmp_path / "out").mkdir()
    names = next(data.parent.glob("*.names"))
    train_list = next(data.parent.glob("train*.txt"))
    argv = ["lr-find", str(data), "--imgsz", "64", "--batch", "4", "--steps", "10",
            "--workers", "0", "--device", "cpu"]  # fmt: skip
    cases = [
        (other, [], "--exist-ok"), (tmp_path / "out", ["--exist-ok"], "folder"),
        (data, ["--exist-ok"], "input files"), (names, ["--exist-ok"], "input files"),
        (train_list, ["--exist-ok"], "input files"),
    ]  # fmt: skip
    for plot, extra, needle in cases:
        before = plot.read_bytes() if plot.is_file() else None
        assert main([*argv, "--plot", str(plot), *extra]) == 2, plot
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
        assert (plot.read_bytes() if plot.is_file() else None) == before


@pytest.mark.slow
def test_resume_from_another_folder_and_data_spelled_another_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run started with a relative DATA resumes from any working directory, and DATA given
    again as ./ds/obj.data is the run's own dataset (both were refused)."""
    _data(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "ds/obj.data", *FAST, "--epochs", "1", "--out", "run"]) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["train", "--resume", "../run", "--epochs", "2"]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["train", "./ds/obj.data", "--resume", "run", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "done: 3 epoch(s)" in out
    meta = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert meta["data"] == str(tmp_path / "ds" / "obj.data") and meta["epochs"] == 3
