"""``detforge demo``: the product's main job, end to end, on a generated dataset.

The demo is an explicit, ordered list of steps (:data:`STEPS`). Each step is a function taking
the :class:`DemoRun` and running one ``detforge`` command in-process, leaving its outputs in
``run.out``. A new capability joins the demo by adding one step function and one line to
:data:`STEPS`; later steps find earlier outputs in ``run.files`` (e.g. ``run.files["data"]``,
the generated ``obj.data``, and ``run.files["split_data"]``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from detforge.cli.common import non_negative_int
from detforge.cli.demo import data as demo_data
from detforge.cli.demo import model as demo_model
from detforge.cli.demo import predict as demo_predict
from detforge.cli.demo.basics import (
    DemoRun,
    step_generate,
    step_info,
    step_lists,
    step_split,
)
from detforge.errors import DetforgeError
from detforge.utils.io import make_folder
from detforge.utils.outdir import out_folder

HELP = "generate a small dataset and run every command on it (the whole job end to end)"
DESCRIPTION = """\
Generate a small synthetic Darknet dataset (drawn shapes with exact boxes, negatives,
train/valid/test lists, obj.names, obj.data) into --out and run every detforge command on
it in order, leaving each command's outputs there. Use it to see what detforge does, to
check an installation, or as a template for your own data.

examples:
  detforge demo                       # into a new folder detforge-demo-YYYYmmdd-HHMMSS
  detforge demo --out demo-run
  detforge demo --out /tmp/d --steps generate,info,split
  detforge demo --list-steps
"""


STEPS: list[tuple[str, str, Callable[[DemoRun], None]]] = [
    ("generate", "a synthetic Darknet dataset", step_generate),
    ("info", "what is in it", step_info),
    ("lists", "image lists from folders", step_lists),
    ("split", "a fresh stratified train/valid/test split", step_split),
    ("check", "the dataset checked; planted faults found and repaired", demo_data.step_check),
    ("convert", "Ultralytics, COCO, VOC and TFRecord copies", demo_data.step_convert),
    ("stats", "class and box-size statistics with plots", demo_data.step_stats),
    ("train", "a small detector trained on the shapes", demo_model.step_train),
    ("val", "the trained detector scored on the test split", demo_model.step_val),
    ("predict", "detections on the valid split, and 'map' scores", demo_predict.step_predict),
    ("eval", "the detections evaluated with both protocols, plots", demo_model.step_eval),
    ("show", "pictures: ground truth beside predictions, contact sheet", demo_predict.step_show),
    ("export", "ONNX export, run through onnxruntime", demo_model.step_export),
    ("report", "an offline HTML report of it all", demo_predict.step_report),
]
"""The demo, in order: ``(name, what it shows, function)``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder [a new detforge-demo-<time> folder]",
    )
    parser.add_argument(
        "--images", type=int, default=60, metavar="N", help="number of images to generate [60]"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed [0]")
    parser.add_argument(
        "--train-seconds",
        type=float,
        default=90.0,
        metavar="S",
        help="wall-clock budget of the training step, s (the LR schedule fits what fits) [90]",
    )
    parser.add_argument(
        "--steps",
        default=None,
        metavar="A,B",
        help="run only these steps (comma-separated; see --list-steps)",
    )
    parser.add_argument("--list-steps", action="store_true", help="list the steps and exit")


def run(args: argparse.Namespace) -> int:
    if args.list_steps:
        for name, what, _ in STEPS:
            print(f"{name:<12} {what}")
        return 0
    names = [n for n, _, _ in STEPS]
    chosen = names if args.steps is None else [s.strip() for s in args.steps.split(",")]
    unknown = [s for s in chosen if s not in names]
    if unknown:
        raise DetforgeError(f"unknown demo step(s) {', '.join(unknown)}; steps: {', '.join(names)}")
    if "generate" not in chosen:
        chosen = ["generate", *chosen]  # every step needs the dataset
    if args.images < 10:
        raise DetforgeError("--images must be at least 10")
    out = out_folder(time.strftime("detforge-demo-%Y%m%d-%H%M%S") if args.out is None else args.out)
    make_folder(out)  # a file in the way: one line naming it
    state = DemoRun(
        out=out.resolve(), images=args.images, seed=args.seed, train_seconds=args.train_seconds
    )
    selected = [(n, w, f) for n, w, f in STEPS if n in chosen]
    t_all = time.perf_counter()
    for k, (name, what, fn) in enumerate(selected, start=1):
        print(f"\n== [{k}/{len(selected)}] {name}: {what} ==", flush=True)
        t0 = time.perf_counter()
        fn(state)
        print(f"-- {name} done in {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"\ndemo finished in {time.perf_counter() - t_all:.1f} s; outputs in {state.out}")
    for key, path in state.files.items():
        print(f"  {key:<12} {path}")
    return 0
