"""The demo's model steps (see :mod:`detforge.cli.demo`): train a small detector on the
generated shapes, validate it, evaluate its predictions with both protocols and export it to
ONNX.

The training step keeps to a wall-clock budget (``run.train_seconds``, 90 s unless
``--train-seconds`` says otherwise) so the whole demo stays a few minutes on a laptop CPU; it
stores the checkpoint as ``run.files["weights"]`` for the later steps.
"""

from __future__ import annotations

from detforge.cli.demo.basics import DemoRun, cli


def step_train(run: DemoRun) -> None:
    """``train`` a small ``n`` model at 160 px for about ``run.train_seconds`` seconds."""
    out = run.out / "train"
    argv = ["train", str(run.dataset), "--model", "n", "--imgsz", "160", "--batch", "8",
            "--epochs", "60", "--time-budget", str(run.train_seconds), "--optimizer", "adamw",
            "--lr", "0.004", "--close-mosaic", "5", "--workers", "0", "--device", "cpu",
            "--out", str(out), "--val-every", "5"]  # fmt: skip
    if out.exists() and (out / "weights" / "last.pt").exists():
        print(f"{out} already holds a run; using its weights")
    else:
        cli(argv)
    run.files["train_run"] = out
    run.files["weights"] = out / "weights" / "best.pt"
    print(f"look at {out}/results.png and {out}/preview/ (predictions beside ground truth)")


def step_val(run: DemoRun) -> None:
    """``val``: the checkpoint on the test split, both protocols, JSON like ``eval``."""
    cli(["val", str(run.files["weights"]), str(run.dataset), "--split", "test", "--imgsz", "160",
         "--json", str(run.out / "val-test.json")])  # fmt: skip


def step_eval(run: DemoRun) -> None:
    """``eval`` the predict step's COCO results JSON against the valid split, with plots."""
    dets = run.files.get("detections_json")
    if dets is None:
        print("no predictions yet (the predict step makes them); skipping eval")
        return
    out = run.out / "eval"
    cli(["eval", str(run.dataset), str(dets), "--split", "valid", "--out", str(out), "--plots"])
    print(f"PR curves, F1-confidence curve and confusion matrix: {out}/")


def step_export(run: DemoRun) -> None:
    """``export`` to ONNX, then ``predict`` a few test images with onnxruntime."""
    onnx = run.out / "export" / "model.onnx"
    cli(["export", str(run.files["weights"]), "--imgsz", "160", "-o", str(onnx)])
    cli(["predict", str(onnx), str(run.dataset), "--split", "test", "--out",
         str(run.out / "export" / "predict"), "--save-images"])  # fmt: skip
