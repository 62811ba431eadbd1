"""``detforge train --cfg X.cfg --weights X.weights`` end to end on CPU: a tiny Darknet network
(weights written by our writer, 3 classes) fine-tuned on a 2-class shapes set for a few epochs:
the loss falls, the run folder has the usual outputs, and best.pt predicts without the cfg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.cli.main import main
from detforge.data.synthetic import generate_shapes_dataset
from detforge.models.checkpoint import load_checkpoint, load_model
from detforge.train.runs import read_metrics_csv
from detforge.train.trainer import train

from ._darknet_tiny import write_tiny_weights
from ._tiny import one_torch_thread, tiny_config  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("dn")
    data = generate_shapes_dataset(
        root / "ds", num_images=24, imgsz=(64, 64), classes=("square", "circle"), seed=1,
        splits=(0.75, 0.25, 0.0), negatives=0.0, max_objects=2,
    )  # fmt: skip
    weights = write_tiny_weights(root / "tiny.weights", classes=3)
    cfg = tiny_config(
        data, root / "run", cfg=str(weights.with_suffix(".cfg")), weights=str(weights),
        epochs=6, batch=6, lr=0.02, warmup_min_iters=2, val_every=3, freeze=2,
        plots=True, tensorboard=True, check=True, preview_images=2, anchors="auto",
    )  # fmt: skip
    return data, weights, train(cfg)


def test_finetune_runs_and_loss_falls(finetuned: tuple[Path, Path, object]) -> None:
    data, weights, res = finetuned
    run = res.run_dir  # type: ignore[attr-defined]
    rows = read_metrics_csv(run / "metrics.csv")
    assert len(rows) == 6
    total = [float(r["train/box"]) + float(r["train/cls"]) + float(r["train/obj"]) for r in rows]
    assert total[-1] < 0.95 * total[0] and total[-1] == min(total), total
    log = (run / "train.log").read_text()
    assert "classes=3 rebuilt for the dataset's 2" in log
    assert "6 of 8 convolutional layers loaded" in log and "re-initialised: layers 11, 14" in log
    assert "--freeze 2: cfg layers 0-1 stay fixed" in log
    # --anchors auto: k-means of the training boxes as letterboxed at imgsz, into the cfg
    from detforge.data.anchors import anchors_for_dataset
    from detforge.formats.common import ensure_sizes
    from detforge.formats.detect import read_any

    ds = ensure_sizes(read_any(data))
    want = anchors_for_dataset(ds, 6, 64, 64, letter_box=True).darknet_text()
    assert f"--anchors auto: {want} (k-means of" in log
    assert "training tiny.cfg on 18 images (2 classes)" in log
    assert list(run.glob("events.out.tfevents.*")) and list((run / "preview").glob("*.jpg"))
    ck = load_checkpoint(run / "weights" / "best.pt")
    assert ck["model_args"]["arch"] == "darknet" and "classes=2" in ck["model_args"]["cfg"]
    assert (
        ck["model_args"]["cfg"].count(f"anchors = {want}")
        + ck["model_args"]["cfg"].count(f"anchors={want}")
        == 2
    ), "both [yolo] heads train with the new anchors"
    # frozen layer 0 is exactly the file's; layer 4 has moved
    model, names, _ = load_model(run / "weights" / "last.pt", use_ema=False)
    from ._darknet_tiny import source_network

    src = source_network(weights, 3)
    assert torch.equal(model.net.layers[0].conv.weight, src.layers[0].conv.weight)
    assert not torch.equal(model.net.layers[4].conv.weight, src.layers[4].conv.weight)
    assert names == ["square", "circle"]


def test_best_pt_predicts_without_the_cfg(
    finetuned: tuple[Path, Path, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, weights, res = finetuned
    best = res.run_dir / "weights" / "best.pt"  # type: ignore[attr-defined]
    weights.with_suffix(".cfg").rename(tmp_path / "moved.cfg")  # the cfg is not needed
    import detforge

    pred = detforge.load(best, device="cpu")
    images = sorted((data.parent).rglob("*.png")) + sorted((data.parent).rglob("*.jpg"))
    out = pred.predict(str(images[0]), conf=0.001)[0]
    assert out.boxes.shape[1] == 4 and tuple(out.class_names) == ("square", "circle")
    assert main(["predict", str(best), str(images[0]), "--out", str(tmp_path / "p"),
                 "--conf", "0.001"]) == 0  # fmt: skip
    # it runs as Darknet runs its export: the same detections as the exported files
    from detforge.predict.darknet import DarknetPredictor

    assert isinstance(pred, DarknetPredictor)
    assert main(["export", str(best), "--format", "darknet", "--out", str(tmp_path / "d")]) == 0
    cfg = next((tmp_path / "d").glob("*.cfg"))
    exported = detforge.load(cfg.with_suffix(".weights"), cfg=cfg, device="cpu")
    again = exported.predict(str(images[0]), conf=0.001)[0]
    np.testing.assert_allclose(again.boxes, out.boxes, atol=1e-3)
    np.testing.assert_allclose(again.scores, out.scores, atol=1e-5)
    assert again.classes.tolist() == out.classes.tolist()
    assert main(["val", str(best), str(data), "--device", "cpu"]) == 0
    assert main(["map", str(data), str(best)]) == 0


def test_resume_continues_the_darknet_run(finetuned: tuple[Path, Path, object]) -> None:
    _, _, res = finetuned
    run = res.run_dir  # type: ignore[attr-defined]
    from detforge.train.config import read_config

    cfg = read_config(run / "config.yaml")
    cfg.resume, cfg.weights, cfg.epochs = str(run), None, 7
    out = train(cfg)
    assert out.epochs_done == 7
    assert len(read_metrics_csv(run / "metrics.csv")) == 7


def test_cli_defaults_come_from_the_cfg(tmp_path: Path) -> None:
    from detforge.cli.main import build_parser
    from detforge.cli.train import config_from_args

    weights = write_tiny_weights(tmp_path / "tiny.weights", classes=3)
    cfg_file = str(weights.with_suffix(".cfg"))
    parser = build_parser()
    cfg = config_from_args(parser.parse_args(["train", "d.data", "--cfg", cfg_file]))
    # the cfg's learning_rate per detforge batch (16 by default), no gradient clipping
    assert cfg.imgsz == 64 and cfg.lr == pytest.approx(0.001 / 16) and cfg.clip_grad == 0
    cfg = config_from_args(parser.parse_args(["train", "d.data", "--cfg", cfg_file, "--batch",
                                              "4", "--clip-grad", "5"]))  # fmt: skip
    assert cfg.lr == pytest.approx(0.001 / 4) and cfg.clip_grad == 5
    cfg = config_from_args(
        parser.parse_args(["train", "d.data", "--cfg", cfg_file, "--batch", "auto"])
    )
    assert cfg.lr == pytest.approx(0.001 / 64)  # the cfg's batch=64
    cfg = config_from_args(
        parser.parse_args(["train", "d.data", "--cfg", cfg_file, "--imgsz", "96", "--lr", "0.01"])
    )
    assert cfg.imgsz == 96 and cfg.lr == 0.01
    assert main(["train", "d.data", "--freeze", "3"]) == 2


def test_exported_finetuned_network_reloads_with_equal_outputs(
    finetuned: tuple[Path, Path, object], tmp_path: Path
) -> None:
    from detforge.models.darknet.model import load_darknet

    _, _, res = finetuned
    best = res.run_dir / "weights" / "best.pt"  # type: ignore[attr-defined]
    assert main(["export", str(best), "--format", "darknet", "--out", str(tmp_path / "d")]) == 0
    cfgs = list((tmp_path / "d").glob("*.cfg"))
    assert len(cfgs) == 1 and "letter_box=1" in cfgs[0].read_text()
    assert cfgs[0].with_suffix(".names").read_text().split() == ["square", "circle"]
    back = load_darknet(cfgs[0], cfgs[0].with_suffix(".weights"))
    model, _, _ = load_model(best)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model.net(x), back(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_nan_guard_covers_darknet_runs(tmp_path: Path) -> None:
    data = generate_shapes_dataset(
        tmp_path / "ds", num_images=10, imgsz=(64, 64), classes=("square", "circle"), seed=2,
        splits=(0.8, 0.2, 0.0), negatives=0.0, max_objects=2,
    )  # fmt: skip
    weights = write_tiny_weights(tmp_path / "tiny.weights", classes=2)
    cfg = tiny_config(
        data, tmp_path / "run", cfg=str(weights.with_suffix(".cfg")), weights=str(weights),
        epochs=2, batch=4, lr=0.002,
    )  # fmt: skip

    done: list[int] = []

    def poison(step: int, loss: torch.Tensor) -> torch.Tensor:  # one NaN, at step 1
        if step == 1 and not done:
            done.append(step)
            return loss * float("nan")
        return loss

    res = train(cfg, loss_hook=poison)
    rows = read_metrics_csv(res.run_dir / "metrics.csv")
    assert res.epochs_done == 2 and int(float(rows[-1]["nan_steps"])) == 1
    assert "NaN/inf loss at step 1" in (res.run_dir / "train.log").read_text()


def test_lr_find_cli_takes_a_darknet_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lr-find --cfg --weights --freeze``: the range test runs the Darknet network loaded
    from those weights over Darknet's LR range and shows the cfg's own rate beside its
    recommendation; ``train --cfg --lr auto`` stays a one-line error that points to it."""
    import detforge.train.darknet_model as dm

    data = generate_shapes_dataset(
        tmp_path / "ds", num_images=10, imgsz=(64, 64), classes=("square", "circle"), seed=4,
        splits=(0.8, 0.2, 0.0), negatives=0.0, max_objects=2,
    )  # fmt: skip
    weights = write_tiny_weights(tmp_path / "tiny.weights", classes=3)
    cfg = str(weights.with_suffix(".cfg"))
    plot = tmp_path / "lr.png"
    loads: list[str] = []
    real = dm.load_darknet_weights
    monkeypatch.setattr(dm, "load_darknet_weights", lambda *a: (loads.append(a[1]), real(*a))[1])
    argv = ["lr-find", str(data), "--cfg", cfg, "--weights", str(weights), "--freeze", "2",
            "--batch", "4", "--steps", "12", "--workers", "0", "--plot", str(plot)]  # fmt: skip
    code = main(argv)
    out = capsys.readouterr().out
    assert loads == [str(weights)]
    assert "LR range test: 12 steps from 1e-08 to 0.01 at batch 4" in out
    assert plot.stat().st_size > 1000
    if code == 0:  # 1: no stable LR in 12 steps, said so
        assert "recommended: --lr " in out
        assert "the cfg's own rate, train --cfg's default: --lr 0.00025" in out  # 0.001 / 4
    else:
        assert code == 1 and "no stable LR found" in out, out
    # a Darknet .weights needs its --cfg, --freeze goes with --cfg, and train --cfg takes no
    # --lr auto: one-line errors
    assert main(["lr-find", str(data), "--weights", str(weights), "--steps", "10"]) == 2
    assert main(["lr-find", str(data), "--freeze", "2", "--steps", "10"]) == 2
    assert main(["train", str(data), "--cfg", cfg, "--lr", "auto"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 3, err
    assert "detforge lr-find DATA --cfg" in err.splitlines()[2]
