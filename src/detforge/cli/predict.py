"""``detforge predict``: run a trained detector on images, folders, lists, splits or video."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from detforge.cli.common import (
    add_darknet_model_options,
    add_path_map_option,
    adopt_dataset_names,
    line_width,
    parse_path_map,
    require_model_first,
    split_name,
)
from detforge.errors import DetforgeError
from detforge.utils.outputs import add_output_options, claim_file, results_dir, say_saved
from detforge.utils.textfile import require_file

HELP = "detect objects in images, a folder, an image list, a .data split or a video"
DESCRIPTION = """\
Run a trained detector (a detforge .pt checkpoint, an .onnx file from 'detforge export', or a
Darknet .weights with its .cfg) on new images and keep what it finds. A Darknet network runs
with Darknet's rules: the image stretched to the cfg size (letterboxed if the cfg says
letter_box=1), objectness x class probability, per-class NMS with the cfg's nms_kind at 0.45.

SOURCE is one image, a folder (searched recursively), an image list (.txt, one path per
line), a Darknet .data file (its valid split, or --split / 'obj.data:test'), or a video
(.mp4, .avi, .mov, ... read with PyAV: pip install 'detforge[video]').

Outputs go into one folder: --out DIR, default runs/predict/<source name>; a folder that
exists is numbered DIR-2, DIR-3 ... unless --exist-ok. The last lines say where they went.
An image that cannot be decoded is left out (no outputs for it) and a warning counts them,
naming the first; the exit status is then 1 (2 when no image could be read).
  --save-images  annotated pictures <name>.jpg (boxes, class names, scores); for a video an
                 annotated video <video>.mp4. The default when no --save-* option is given.
  --save-txt     labels/<name>.txt with one 'class cx cy w h conf' line per box
                 (normalised to the image, like 'darknet detector test -save_labels')
  --save-json [F]  a COCO results JSON ([{image_id, category_id, bbox, score}, ...]) that
                 'detforge eval' and pycocotools read directly: predictions.json in the
                 output folder, or the file F (an existing F only with --exist-ok); beside it
                 F.meta.json (dataset, split, model, the image of every image_id). image_id is
                 the dataset's id for a .data source (as 'convert --to coco' numbers it), the
                 number a file is named by when all are (COCO's 000000000139.jpg -> 139),
                 else the position in SOURCE; boxes and scores are full float32 values.

Examples:
  detforge predict runs/train/obj/weights/best.pt photos/ --save-images
  detforge predict best.pt data/obj.data --split test --save-json --conf 0.001
  detforge predict best.onnx trailcam.mp4 --every 5 --save-images --save-txt
  detforge predict yolov4-tiny.weights photos/ --cfg yolov4-tiny.cfg --names obj.names
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "weights", help="detforge checkpoint (.pt), exported model (.onnx) or Darknet .weights"
    )
    parser.add_argument("source", help="image, folder, image list, .data file or video")
    parser.add_argument(
        "--split", type=split_name, help="split of a .data source: train, valid, test [valid]"
    )
    parser.add_argument(
        "--every", type=int, default=1, metavar="N", help="video: use every N-th frame [1]"
    )
    parser.add_argument("--conf", type=float, default=0.25, help="minimum score [0.25]")
    parser.add_argument(
        "--iou", type=float, default=None, help="NMS IoU threshold [0.7; Darknet: 0.45]"
    )
    parser.add_argument(
        "--max-det", type=int, default=None, help="most boxes per image [300; Darknet: all]"
    )
    parser.add_argument(
        "--imgsz", type=int, default=None, help="input square side, pixels [the model's size]"
    )
    parser.add_argument("--batch", type=int, default=16, help="images per forward pass [16]")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 [auto]")
    parser.add_argument("--half", action="store_true", help="float16 on a CUDA device")
    add_output_options(parser, "predict")
    parser.add_argument("--save-txt", action="store_true", help="write labels/<name>.txt")
    parser.add_argument(
        "--save-json", type=Path, nargs="?", const=Path(), metavar="FILE",
        help="write COCO results [predictions.json in the output folder]",
    )  # fmt: skip
    parser.add_argument("--save-images", action="store_true", help="write annotated images")
    parser.add_argument(
        "--classes", nargs="+", metavar="C",
        help="keep only these classes (names or 0-based ids), e.g. --classes deer 3",
    )  # fmt: skip
    parser.add_argument(
        "--line-width", type=line_width, default=None, help="box outline, pixels (1-100)"
    )
    add_darknet_model_options(parser)
    add_path_map_option(parser)


def _data_names(data_path: str, path_map: Any) -> list[str] | None:
    """The class names a ``.data`` SOURCE names (its ``names=`` file), if any."""
    from detforge.formats.darknet import read_data_file, read_names

    datafile = read_data_file(data_path, path_map=path_map)
    return read_names(datafile.names) if datafile.names else None


def _coco_ids(
    data_path: str | None,
    split: str | None,
    path_map: Any,
    num_classes: int,
    paths: tuple[str, ...] = (),
) -> tuple[dict[str, int], list[int]]:
    """For a ``.data`` source: image path -> image id and the COCO category ids exactly as
    ``detforge eval DATA`` numbers that split's ground truth (the whole dataset's ids, as
    ``convert --to coco`` writes them). Other sources: categories 1..K, and when every file
    name is a distinct number (COCO's ``000000000139.jpg``; darknet's ``image_id`` rule) that
    number, else no ids (the position in the source is used)."""
    if data_path is None:
        stems = [Path(p).stem for p in paths]
        numbered = all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems)
        ids = {p: int(s) for p, s in zip(paths, stems, strict=True)} if numbered else {}
        return ids, list(range(1, num_classes + 1))
    from detforge.formats.coco import coco_category_ids
    from detforge.formats.detect import read_ground_truth

    gt, _ = read_ground_truth(data_path, split=split, images_dir=None, path_map=path_map)
    ids = {str(p): int(i) for p, i in zip(gt.images.path, gt.images.id, strict=True)}
    return ids, coco_category_ids(gt)


def class_filter(wanted: list[str] | None, names: tuple[str, ...]) -> Any:
    """``--classes`` (names or 0-based ids) -> a sorted id array, or ``None`` for all."""
    if not wanted:
        return None
    ids = []
    for w in wanted:
        if w in names:
            ids.append(names.index(w))
        elif w.isdigit() and int(w) < len(names):
            ids.append(int(w))
        else:
            raise DetforgeError(
                f"--classes: {w!r} is neither a class name nor an id 0..{len(names) - 1} "
                f"(classes: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''})"
            )
    return np.unique(np.array(ids, dtype=np.int64))


def _source_files(source: str, split: str | None, path_map: Any) -> list[str]:
    """The files SOURCE itself is (an image list, a ``.data`` file with its lists, names and
    difficult list): inputs no output may replace. A folder or a single image: none (the
    images and their label files are the guard's own)."""
    from detforge.formats.darknet import read_data_file
    from detforge.predict.sources import split_data_arg

    data_path, _ = split_data_arg(source, split)
    if Path(data_path).is_dir():
        return []
    files = [data_path]
    if data_path.lower().endswith(".data"):
        datafile = read_data_file(data_path, path_map=path_map)
        keys = ("train", "valid", "test", "names", "difficult")
        files += [v for v in (getattr(datafile, k) for k in keys) if v]
    return files


def _planned_outputs(
    source: Any, out: Path | None, *, save_txt: bool, save_images: bool, json: Path | None
) -> list[Path]:
    """Every file this run will write (known before the model runs): what the input guard
    checks up front, so that a refusal comes before any work and before any file is written."""
    from detforge.formats.predictions import sidecar_path

    planned: list[Path] = []
    if out is not None and source.kind == "images":
        names = source.names
        if save_txt:
            planned += [out / "labels" / f"{n}.txt" for n in names]
            planned.append(sidecar_path(out / "labels"))
        if save_images:
            planned += [out / f"{n}.jpg" for n in names]
    elif out is not None and save_images:
        planned.append(out / f"{Path(source.video or 'video').stem}.mp4")
    if json is not None:
        planned += [json, sidecar_path(json)]
    return planned


class PredictionFiles:
    """What ``--save-txt`` and ``--save-json`` write: a ``labels/<name>.txt`` per image as it
    comes, the COCO results and the provenance sidecars at the end."""

    def __init__(
        self,
        args: argparse.Namespace,
        class_names: tuple[str, ...],
        paths: tuple[str, ...],
        path_map: Any,
        out: Path | None,
        guard: Any,
    ) -> None:
        from detforge.formats.predictions import Provenance
        from detforge.predict.sources import split_data_arg

        data_path, split = split_data_arg(str(args.source), args.split)
        is_data = data_path.lower().endswith(".data")
        wanted = args.save_json is not None or args.save_txt
        self.ids, self.cats = _coco_ids(
            data_path if is_data and wanted else None, split or "valid", path_map,
            len(class_names), paths,
        )  # fmt: skip
        self.prov = Provenance(
            written_by="detforge predict",
            dataset=data_path if is_data else None,
            split=(split or "valid") if is_data else None,
            model=str(args.weights),
            classes=list(class_names),
            category_ids=self.cats,
            settings={"conf": args.conf, "iou": args.iou, "max_det": args.max_det,
                      "imgsz": args.imgsz, "classes": args.classes},
        )  # fmt: skip
        self.json: Path | None = args.save_json
        self.labels = out / "labels" if args.save_txt and out is not None else None
        self.guard = guard
        self.dets: list[tuple[int, Any, Any, Any]] = []

    def add(self, frame: Any, pred: Any) -> None:
        """One image's detections (``pred``: a :class:`~detforge.predict.api.Prediction`)."""
        from detforge.formats.predictions import write_darknet_txt

        image_id = self.ids.get(frame.path or "", frame.index)
        self.prov.images[image_id] = frame.path or ""
        if self.labels is not None:
            h, w = pred.shape
            txt = self.guard.check(self.labels / f"{frame.name}.txt")
            write_darknet_txt(txt, pred.boxes, pred.classes, pred.scores, w, h)
        if self.json is not None:
            self.dets.append((image_id, pred.boxes, pred.classes, pred.scores))

    def finish(self) -> None:
        """Write the COCO results (all images at once) and the sidecars."""
        from detforge.formats.predictions import (
            coco_records,
            sidecar_path,
            write_coco_results,
            write_provenance,
        )

        if self.json is not None:
            d = self.dets
            ids = [np.full(len(c), i, dtype=np.int64) for i, _, c, _ in d]
            records = coco_records(
                np.concatenate(ids) if d else np.zeros(0, dtype=np.int64),
                np.concatenate([b for _, b, _, _ in d]) if d else np.zeros((0, 4)),
                np.concatenate([c for _, _, c, _ in d]) if d else np.zeros(0, dtype=np.int64),
                np.concatenate([s for _, _, _, s in d]) if d else np.zeros(0),
                self.cats,
            )
            self.guard.check(sidecar_path(self.json))
            write_coco_results(self.guard.check(self.json), records, provenance=self.prov)
        if self.labels is not None:
            self.guard.check(sidecar_path(self.labels))
            write_provenance(self.labels, self.prov)


def run(args: argparse.Namespace) -> int:
    from detforge.data.images import load_image
    from detforge.predict.api import load
    from detforge.predict.draw import draw_boxes
    from detforge.predict.sources import open_source, split_data_arg
    from detforge.predict.writers import InputGuard, VideoWriter, save_image
    from detforge.utils.progress import progress

    path_map = parse_path_map(args.path_map)
    require_model_first("predict", str(args.weights), str(args.source))
    require_file(args.weights, "weights")
    if args.classes:  # a --classes mistake is reported before the (slow) model load
        from detforge.predict.loading import peek_class_names

        declared = peek_class_names(Path(args.weights), names=args.names)
        if declared is not None:
            class_filter(args.classes, declared)
    source = open_source(args.source, split=args.split, every=args.every, path_map=path_map)
    save_images = args.save_images or (args.save_json is None and not args.save_txt)
    out: Path | None = None
    in_run = args.save_json is not None and args.save_json == Path()
    if save_images or args.save_txt or in_run:
        out = results_dir("predict", out=args.out, source=args.source, exist_ok=args.exist_ok)
    if in_run and out is not None:
        args.save_json = out / "predictions.json"
    elif args.save_json is not None:
        if args.save_json.suffix.lower() != ".json":
            raise DetforgeError(
                "--save-json expects a file name ending in .json", path=args.save_json
            )
        claim_file(args.save_json, exist_ok=args.exist_ok, option="--save-json")
    # The images, the label files Darknet and Ultralytics read for them (a relative folder
    # source included: `predict images --out . --save-txt` from the dataset folder) and the
    # source's own files are inputs: refused as outputs, with or without --exist-ok.
    guard = InputGuard(
        [*source.paths, *([source.video] if source.video else [])],
        files=_source_files(str(args.source), args.split, path_map),
    )
    for planned in _planned_outputs(
        source, out, save_txt=args.save_txt, save_images=save_images, json=args.save_json
    ):
        guard.check(planned)
    model = load(
        args.weights, device=args.device, imgsz=args.imgsz, half=args.half, cfg=args.cfg,
        names=args.names,
    )  # fmt: skip
    data_path, _ = split_data_arg(str(args.source), args.split)
    if data_path.lower().endswith(".data"):
        adopt_dataset_names(model, args.names, _data_names(data_path, path_map) or [])
    keep = class_filter(args.classes, model.class_names)
    counts: Counter[int] = Counter()
    n_frames = empty = 0
    video: VideoWriter | None = None
    files = PredictionFiles(args, model.class_names, source.paths, path_map, out, guard)
    if source.kind == "video" and save_images and out is not None:
        fps = source.fps / max(1, source.every)
        name = f"{Path(source.video or 'video').stem}.mp4"
        video = VideoWriter(guard.check(out / name), fps=fps)
    start = time.perf_counter()
    # Images are decoded straight to the input size (the rule every command shares); the
    # full-resolution picture is decoded again only to draw on it.
    skipped: list[str] = []  # images that cannot be decoded: left out, said at the end
    frames = source.frames(fit=None if model.full_resolution else model.rule.shape,
                           skipped=skipped)  # fmt: skip
    stream = model.predict_frames(
        frames, conf=args.conf, iou=args.iou, max_det=args.max_det, batch=args.batch
    )
    try:
        for frame, pred in progress(stream, total=len(source), desc="predict", unit="frame"):
            n_frames += 1
            if keep is not None:
                pred = pred.only(np.isin(pred.classes, keep))
            counts.update(pred.classes.tolist())
            empty += len(pred) == 0
            files.add(frame, pred)
            if save_images and out is not None:
                full = frame.image if frame.path is None else load_image(frame.path).image
                drawn = draw_boxes(
                    full, pred.boxes, pred.classes, scores=pred.scores,
                    class_names=model.class_names, line_width=args.line_width,
                )  # fmt: skip
                if video is not None:
                    video.write(np.asarray(drawn))
                else:
                    save_image(guard.check(out / f"{frame.name}.jpg"), drawn)
    except BaseException:
        if video is not None:
            video.discard()
        raise
    if video is not None:
        video.close()
    elapsed = time.perf_counter() - start
    if skipped and n_frames == 0:
        raise DetforgeError(f"no image could be read; the first: {skipped[0]}")
    files.finish()

    names = model.class_names
    none = f"no detections above {args.conf:g}"
    found = ", ".join(f"{counts[c]} {names[c]}" for c in sorted(counts)) or none
    if counts and empty:
        found += f"; {empty} with {none}"
    rate = n_frames / elapsed if elapsed > 0 else 0.0
    print(f"{n_frames} {'frames' if source.kind == 'video' else 'images'} from "
          f"{source.description}: {found} ({rate:.1f} images/s, {model.backend})")  # fmt: skip
    for what, where in (
        ("annotated video", video.path if video is not None else None),
        ("annotated images", out if save_images and video is None else None),
        ("labels", out / "labels" if args.save_txt and out is not None else None),
        ("COCO results", args.save_json),
    ):
        if where is not None:
            say_saved(what, where)
    if skipped:
        print(f"warning: {len(skipped)} images could not be read and have no predictions, "
              f"e.g. {skipped[0]}", file=sys.stderr)  # fmt: skip
        return 1
    return 0
