"""What the demo's steps share (the :class:`DemoRun` state and the in-process ``detforge``
call :func:`cli`) and its first steps: generate a dataset, describe it, list and split it.
The other steps live in ``data.py``, ``model.py`` and ``predict.py``; the ordered list
:data:`detforge.cli.demo.STEPS` ties them together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detforge.errors import DetforgeError


@dataclass
class DemoRun:
    """State shared by the steps: the output folder and the files earlier steps produced."""

    out: Path
    images: int = 60
    seed: int = 0
    train_seconds: float = 90.0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def dataset(self) -> Path:
        """The ``obj.data`` later steps use: the split step's, else the generated one."""
        return self.files.get("split_data", self.files["data"])


def cli_status(argv: Sequence[str], *, stdout: Path | None = None) -> int:
    """Run one ``detforge`` command in-process (its output saved to ``stdout`` if given) and
    return its exit status."""
    import contextlib

    from detforge.cli.main import main

    shown = " ".join(argv) + (f" > {stdout}" if stdout is not None else "")
    print(f"$ detforge {shown}", flush=True)
    if stdout is None:
        return main(list(argv))
    with open(stdout, "w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
        return main(list(argv))


def cli(argv: Sequence[str], *, stdout: Path | None = None) -> None:
    """Like :func:`cli_status`, but a non-zero status stops the demo."""
    status = cli_status(argv, stdout=stdout)
    if status != 0:
        shown = " ".join(argv)
        raise DetforgeError(f"demo step 'detforge {shown}' exited with status {status}")


def step_generate(run: DemoRun) -> None:
    from detforge.data.synthetic import generate_shapes_dataset

    data = generate_shapes_dataset(
        run.out / "dataset", num_images=run.images, seed=run.seed, size_jitter=0.2
    )
    run.files["data"] = data
    run.files["images"] = data.parent / "images"
    print(f"wrote {run.images} images of circles, squares and triangles: {data}")


def step_info(run: DemoRun) -> None:
    cli(["info", str(run.files["data"])])
    cli(["info", str(run.files["data"]), "--json"], stdout=run.out / "info.json")
    run.files["info"] = run.out / "info.json"


def step_lists(run: DemoRun) -> None:
    lists = run.out / "lists"
    images = str(run.files["images"])  # --exist-ok: an earlier demo's lists, in its own folder
    cli(["lists", images, "-o", str(lists / "all.txt"), "--exist-ok"])
    cli(["lists", images, "-o", str(lists / "every_5th.txt"), "--every", "5", "--exist-ok"])
    run.files["all_list"] = lists / "all.txt"


def step_split(run: DemoRun) -> None:
    out = run.out / "split"
    source = run.files.get("all_list", run.files["data"])
    names = run.files["data"].parent / "obj.names"
    argv = ["split", str(source), "--out", str(out), "--ratios", "0.7,0.2,0.1"]
    cli([*argv, "--stratify", "--seed", str(run.seed), "--names", str(names)])
    run.files["split_data"] = out / "obj.data"
