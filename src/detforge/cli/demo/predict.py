"""The demo's last steps (see :mod:`detforge.cli.demo`): predict with the trained weights, score
them like ``darknet detector map``, and draw pictures a person can open.

Both steps read what earlier steps left in ``run.files``: ``data`` (or ``split_data``) and,
for predictions, ``weights`` (the training step's best checkpoint). Without weights the
predict step says so and the show step draws the ground truth only.
"""

from __future__ import annotations

from detforge.cli.demo.basics import DemoRun, cli


def step_predict(run: DemoRun) -> None:
    """``predict`` on the valid split (pictures, txt labels, COCO JSON), then ``map``."""
    weights = run.files.get("weights")
    if weights is None:
        print("no trained weights yet (the train step makes them); skipping predict and map")
        return
    out = run.out / "predict"
    data = str(run.dataset)
    dets = out / "detections.json"
    cli(["predict", str(weights), data, "--split", "valid", "--out", str(out), "--save-images",
         "--save-txt", "--save-json", str(dets)])  # fmt: skip
    run.files["predictions"] = out / "labels"
    run.files["detections_json"] = dets
    cli(["map", str(weights), data, "--out", str(run.out / "map")])
    print(f"annotated pictures: {out}/*.jpg; metrics and plots: {run.out / 'map'}/")


def step_show(run: DemoRun) -> None:
    """``show`` the valid split: ground truth, or ground truth beside the predictions."""
    out = run.out / "show"
    argv = [
        "show",
        str(run.dataset),
        "--split",
        "valid",
        "--out",
        str(out),
        "--grid",
        "--limit",
        "16",
    ]
    preds = run.files.get("predictions")
    if preds is not None:
        argv += ["--pred", str(preds)]
    cli(argv)
    what = "ground truth beside predictions" if preds is not None else "ground-truth boxes"
    print(f"{what}: {out}/ (grid_000.jpg is a contact sheet)")


def step_report(run: DemoRun) -> None:
    """``report``: the whole run as one offline HTML page (dataset, evaluation, errors, run)."""
    from detforge.cli.demo.basics import cli

    out = run.out / "report"
    argv = ["report", str(run.dataset), "--out", str(out)]
    if run.files.get("detections_json") is not None:
        argv += ["--pred", str(run.files["detections_json"]), "--name", "demo model"]
    train_run = run.files.get("train_run")
    if train_run is not None and (train_run / "metrics.csv").is_file():
        argv += ["--run", str(train_run)]
    cli(argv)
    run.files["report"] = out / "index.html"
    print(f"open the report in a browser: {(out / 'index.html').as_uri()}")
