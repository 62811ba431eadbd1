"""``build_report``: collect everything the page shows and write the site."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.data.dataset import Dataset

if TYPE_CHECKING:
    from detforge.report.classify import Suspect


@dataclass(frozen=True)
class Model:
    """One prediction set: ``pred`` shares the evaluated ground truth's image table (as
    :func:`detforge.eval.read_predictions` returns it); ``name`` labels it on the page."""

    name: str
    pred: Dataset
    source: str = ""


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def report_data(
    gt: Dataset,
    out: Path,
    *,
    models: Sequence[Model] = (),
    dataset: Dataset | None = None,
    check: Any = None,
    run_dir: str | os.PathLike[str] | None = None,
    source: str = "",
    conf: float = 0.25,
    iou: float = 0.5,
    points: int = 0,
    high: float = 0.5,
    max_suspects: int = 1000,
    ignore_unmatched: bool = False,
    workers: int | None = None,
    note: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Everything ``assets/data.js`` holds (and the thumbnails under ``out``).

    ``gt`` is the evaluated ground truth (the gallery's images); ``dataset`` the whole dataset
    for the summary (default ``gt``); ``check`` a :class:`~detforge.check.CheckReport` or
    ``None``; ``conf``/``iou``/``points`` are ``detforge eval``'s options; ``high`` is the
    score a prediction needs to contradict a label; ``ignore_unmatched`` scores a model whose
    predictions mostly fit no image or class, as ``detforge eval --ignore-unmatched`` does;
    ``note`` receives warnings (images that could not be read are shown as a placeholder).
    """
    from detforge import __version__
    from detforge.predict.draw import class_color
    from detforge.report.classify import KINDS
    from detforge.report.collect import dataset_summary, findings_summary, model_evaluation
    from detforge.report.gallery import gallery_order, gt_records, model_records
    from detforge.report.thumbs import make_pictures

    paths = [str(p) for p in gt.images.path]
    pics = make_pictures(paths, out, workers=workers)
    bad = [p.error for p in pics if p.error]
    if bad and note is not None:
        note(
            f"warning: {len(bad)} images could not be read and show as placeholders, e.g. {bad[0]}"
        )
    images = []
    for p, rec, pic in zip(paths, gt_records(gt), pics, strict=True):
        rec.update(path=p, thumb=pic.thumb, view=pic.view, error=pic.error)
        images.append(rec)
    model_out = []
    first: list[dict[str, Any]] | None = None
    for m in models:
        ev = model_evaluation(
            m.name, gt, m.pred, iou=iou, conf=conf, points=points,
            ignore_unmatched=ignore_unmatched,
        )  # fmt: skip
        recs, sus = model_records(gt, m.pred, iou=iou, conf=conf, high=high)
        first = recs if first is None else first
        ev["source"] = m.source
        ev["images"] = recs
        ev["suspects"] = _suspect_rows(sus[:max_suspects], images)
        model_out.append(ev)
    order = gallery_order(first) if first is not None else list(range(len(images)))
    return {
        "version": __version__,
        "source": source,
        "conf": conf,
        "iou": iou,
        "high": high,
        "kinds": list(KINDS),
        "classes": [
            {"name": n, "color": _hex(class_color(k))} for k, n in enumerate(gt.class_names)
        ],
        "dataset": dataset_summary(dataset if dataset is not None else gt),
        "findings": None if check is None else findings_summary(check, paths, out),
        "images": images,
        "order": [int(i) for i in order],
        "models": model_out,
        "run": None if run_dir is None else _run(Path(run_dir), out),
    }


def _suspect_rows(
    suspects: Sequence[Suspect], images: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The report's rows of suspect labels: each :class:`Suspect` as a dict, the score rounded
    to 4 decimals and ``gt_class`` read from the image's ``"g"`` records (``-1``: no truth)."""
    return [
        {
            "image": s.image,
            "gt": s.gt,
            "pred": s.pred,
            "kind": s.kind,
            "score": round(s.score, 4),
            "pred_class": s.pred_class,
            "gt_class": images[s.image]["g"][s.gt][0] if s.gt >= 0 else -1,
        }
        for s in suspects
    ]


def _run(run_dir: Path, out: Path) -> dict[str, Any]:
    from detforge.report.run import collect_run

    return collect_run(run_dir, out)


MARKER = ".detforge-report"
"""File that marks a folder as a report's, so a rebuild may replace what is in it."""


def claim_folder(dest: Path) -> None:
    """Create ``dest`` for a report, or accept it when it is empty or an earlier report's;
    any other non-empty folder is a :class:`DetforgeError`."""
    refuse_folder(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).write_text("written by detforge report; rebuilding here replaces the report\n")


def refuse_folder(dest: Path) -> None:
    """The checks of :func:`claim_folder`, writing nothing: a :class:`DetforgeError` when
    ``dest`` is a file or a non-empty folder that is not an earlier report's."""
    from detforge.errors import DetforgeError

    if dest.exists() and not dest.is_dir():
        raise DetforgeError("--out exists and is not a folder", path=dest)
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MARKER).is_file():
        raise DetforgeError(
            "--out is a folder with other files in it (not an earlier detforge report); "
            "choose a new or empty folder",
            path=dest,
        )


def build_report(
    gt: Dataset,
    out: str | os.PathLike[str],
    *,
    title: str | None = None,
    **options: Any,
) -> Path:
    """Write the report site into ``out`` and return its ``index.html``.

    Options are those of :func:`report_data`. ``out`` is created; files of an earlier report
    there are replaced (thumbnails of unchanged images are reused). A folder that holds
    anything else is refused (:func:`claim_folder`): a report never overwrites other files.
    A build that fails leaves nothing new behind (:func:`~detforge.utils.outdir.removed_on_error`).
    """
    from detforge import __version__
    from detforge.report.page import write_site
    from detforge.utils.outdir import removed_on_error

    dest = Path(out)
    refuse_folder(dest)  # before removed_on_error lists it
    with removed_on_error(dest):
        claim_folder(dest)
        data = report_data(gt, dest, **options)
        name = title or f"Report: {options.get('source') or 'dataset'}"
        created = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        data["title"] = name
        data["created"] = created
        return write_site(dest, data, title=name, version=__version__, created=created)
