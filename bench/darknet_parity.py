"""detforge's Darknet inference vs ``darknet detector test`` (a CPU build of AlexeyAB/darknet).

    python bench/darknet_parity.py --darknet /path/to/darknet/darknet --images IMG [IMG ...]
        [--cfg-dir ../shared/darknet/cfg] [--yolov3-tiny DIR] [--models yolov3-tiny yolov4-tiny]
        [--thresh 0.25 0.05]

Build darknet with ``make GPU=0 CUDNN=0 OPENCV=0 OPENMP=1 AVX=1`` (the judge of Darknet's
semantics). For each model -- yolov3-tiny with the real COCO weights in ``--yolov3-tiny DIR``,
the others with random, well-conditioned weights written by detforge's writer -- the images go
through ``darknet detector test -thresh T -dont_show -out result.json`` (image paths on stdin;
the JSON holds every detection with its relative box and its score as ``%f``, unlike the
whole-percent ``-ext_output`` lines) and through ``detforge.models.darknet.detect`` (detforge's
resize, decoding, thresholds and NMS). A pair matches when the class is equal, the boxes' IoU
>= 0.9 and the scores differ by at most 0.02 (issue 15's rule). Reported per model and
threshold: detections each side, the share matched both ways (the goal: >= 97%), and the worst
score difference and lowest IoU over the matched pairs.

With ``--map`` (yolov3-tiny's real weights only), the images become a small Darknet dataset --
labels are darknet's own detections at threshold 0.1, seeded-randomly dropped (15%), relabelled
(10%), jittered (3% of the box in position, 8% in size) plus a random box on 30% of the images,
which is fine for comparing two scorers on the same files -- and ``darknet detector map DATA
CFG WEIGHTS [-points P] [-iou_thresh T]`` and ``detforge map DATA CFG WEIGHTS [--points P]
[--iou T]`` are run on it (``--map points=11 iou=0.75``: the default run, then one run per
setting); both printed mAP lines and whether the per-class AP lines are identical are
reported (the goal: the same mAP to 6 decimals).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

Detection = tuple[str, float, np.ndarray]  # class name, score, xyxy in pixels


def darknet_detections(
    darknet: Path,
    data: Path,
    cfg: Path,
    weights: Path,
    images: list[Path],
    sizes: list[tuple[int, int]],
    thresh: float,
    work: Path,
) -> list[list[Detection]]:
    """Per image: (class name, score, xyxy) from ``detector test -out``'s JSON."""
    out_json = work / "result.json"
    proc = subprocess.run(
        [
            str(darknet),
            "detector",
            "test",
            str(data),
            str(cfg),
            str(weights),
            "-thresh",
            str(thresh),
            "-dont_show",
            "-out",
            str(out_json),
        ],
        input="\n".join(str(p) for p in images) + "\n",
        capture_output=True,
        text=True,
        cwd=darknet.parent,  # darknet loads data/labels/ from its working folder
        timeout=3600,
    )
    frames = json.loads(out_json.read_text()) if out_json.is_file() else []
    if proc.returncode != 0 or len(frames) != len(images):
        sys.exit(
            f"darknet wrote {len(frames)} results for {len(images)} images:\n{proc.stderr[-3000:]}"
        )
    out: list[list[Detection]] = []
    for frame, (w, h) in zip(frames, sizes, strict=True):
        dets = []
        for o in frame["objects"]:
            r = o["relative_coordinates"]
            cx, cy, bw, bh = r["center_x"] * w, r["center_y"] * h, r["width"] * w, r["height"] * h
            box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], float)
            dets.append((o["name"], float(o["confidence"]), box))
        out.append(dets)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def _best(d: Detection, others: list[Detection]) -> tuple[float, float] | None:
    """(score difference, IoU) of d's match among others (same class, IoU >= 0.9, scores
    within 0.02; the closest score wins), None when there is none."""
    pairs = [(abs(s - d[1]), _iou(b, d[2])) for n, s, b in others if n == d[0]]
    ok = [p for p in pairs if p[0] <= 0.02 and p[1] >= 0.9]
    return min(ok) if ok else None


def _make_map_dataset(frames: list[dict[str, Any]], folder: Path, seed: int = 0) -> int:
    """Label files beside the images in ``folder`` from darknet's detections (see above)."""
    rng = random.Random(seed)
    n = 0
    for frame in frames:
        lines = []
        for o in frame["objects"]:
            if rng.random() < 0.15:
                continue
            r, c = o["relative_coordinates"], o["class_id"]
            if rng.random() < 0.1:
                c = (c + 1) % 80
            w, h = r["width"], r["height"]
            cx = min(max(r["center_x"] + rng.gauss(0, 0.03) * w, 0.01), 0.99)
            cy = min(max(r["center_y"] + rng.gauss(0, 0.03) * h, 0.01), 0.99)
            w = min(max(w * (1 + rng.gauss(0, 0.08)), 0.01), 1.0)
            h = min(max(h * (1 + rng.gauss(0, 0.08)), 0.01), 1.0)
            lines.append(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
        if rng.random() < 0.3:
            xy = [rng.uniform(0.2, 0.8) for _ in range(2)] + [
                rng.uniform(0.05, 0.3) for _ in range(2)
            ]
            lines.append(f"{rng.randrange(80)} " + " ".join(f"{v:.6f}" for v in xy))
        n += len(lines)
        Path(frame["filename"]).with_suffix(".txt").write_text("".join(f"{x}\n" for x in lines))
    return n


def compare_map(
    darknet: Path,
    names_file: Path,
    cfg: Path,
    weights: Path,
    images: list[Path],
    work: Path,
    extra: list[str],
) -> None:
    """``darknet detector map`` vs ``detforge map`` on a dataset made from ``images``."""
    folder = work / "mapdata"
    folder.mkdir()
    copies = []
    for p in images:
        copies.append(folder / p.name)
        shutil.copyfile(p, copies[-1])
    listing = folder / "valid.txt"
    listing.write_text("".join(f"{p}\n" for p in copies))
    data = folder / "obj.data"
    data.write_text(f"classes=80\nnames={names_file.resolve()}\nvalid={listing}\n")
    gt = work / "gt.json"
    subprocess.run(
        [
            str(darknet),
            "detector",
            "test",
            str(data),
            str(cfg),
            str(weights),
            "-thresh",
            "0.1",
            "-dont_show",
            "-out",
            str(gt),
        ],
        input=listing.read_text(),
        capture_output=True,
        text=True,
        cwd=darknet.parent,
        check=True,
    )
    n = _make_map_dataset(json.loads(gt.read_text()), folder)
    flags = {"--iou": "-iou_thresh", "--points": "-points"}  # detforge's name -> darknet's
    dn_extra = [t for a in extra for t in (flags[a.split("=")[0]], a.split("=")[1])]
    dn = subprocess.run(
        [
            str(darknet),
            "detector",
            "map",
            str(data),
            str(cfg),
            str(weights),
            "-dont_show",
            *dn_extra,
        ],
        capture_output=True,
        text=True,
        cwd=darknet.parent,
    ).stdout
    df = subprocess.run(
        [
            sys.executable,
            "-m",
            "detforge",
            "map",
            str(data),
            str(cfg),
            str(weights),
            "--out",
            str(work / "df-map"),
            "--no-plots",
            *extra,
        ],
        capture_output=True,
        text=True,
    ).stdout
    pick = re.compile(r"mean average precision \(mAP@[\d.]+\) = [\d.]+")
    per_class = re.compile(r"class_id = \d+, name = [^,]+, ap = [\d.]+%\s+\(TP = \d+, FP = \d+\)")
    same = per_class.findall(dn) == per_class.findall(df) and per_class.findall(dn)
    print(
        f"map on {len(images)} images, {n} boxes {' '.join(extra)}: darknet "
        f"'{(pick.findall(dn) or ['?'])[0]}', detforge '{(pick.findall(df) or ['?'])[0]}'; "
        f"{len(per_class.findall(dn))} per-class AP lines {'identical' if same else 'DIFFER'}",
        flush=True,
    )


def calibrate_heads(net: Any, image: np.ndarray, per_head: int = 8, spread: float = 4.0) -> None:
    """Shift the head convs' objectness and class biases of a randomly initialised network so
    that about ``per_head`` boxes per head score above 0.5 with one or two classes each (raw
    random weights put hundreds of thousands of detections above 0.25, which darknet's JSON
    writer cannot print in any reasonable time)."""
    import torch

    from detforge.models.darknet.model import forward_rows
    from detforge.models.darknet.preprocess import darknet_input

    w, h = net.input_size
    rows = forward_rows(net, darknet_input(image, w, h, letter_box=net.letter_box))[0]
    start = 0
    with torch.no_grad():
        for head, raw in zip(net.heads, net(darknet_input(image, w, h)), strict=True):
            n_rows = raw.shape[-1] * raw.shape[-2] * len(head.anchors)
            r = rows[start : start + n_rows]
            start += n_rows
            convs = [m for m in net.layers[head.index - 1].modules()]
            conv = [m for m in convs if isinstance(m, torch.nn.Conv2d)][-1]
            obj = r[:, 4].clamp(1e-6, 1 - 1e-6)
            top = obj.topk(per_head).values[-1]
            d_obj = -float(torch.logit(top))  # the per_head-th box's objectness -> 0.5
            cls = r[obj >= top, 5:].clamp(1e-6, 1 - 1e-6)
            d_cls = -float(torch.quantile(torch.logit(cls).flatten(), 1 - 1.5 / head.classes))
            k = 5 + head.classes
            bias = conv.bias
            assert bias is not None  # the conv before a head has no batch norm
            for a in range(len(head.anchors)):
                # pre-activation p -> spread * (p + shift): the shift puts the cut at 0.5, the
                # spread makes the scores fall off steeply around it
                for sl, shift in (
                    (slice(a * k + 4, a * k + 5), d_obj),
                    (slice(a * k + 5, (a + 1) * k), d_cls),
                ):
                    conv.weight[sl] *= spread
                    bias[sl] = spread * (bias[sl] + shift)


def _compare(ours: list[list[Detection]], theirs: list[list[Detection]]) -> str:
    n_ours, n_theirs = sum(map(len, ours)), sum(map(len, theirs))
    fwd = [_best(d, t) for o, t in zip(ours, theirs, strict=True) for d in o]
    back = [_best(d, o) for o, t in zip(ours, theirs, strict=True) for d in t]
    pairs = [m for m in fwd + back if m is not None]
    worst = (
        f"; matched pairs: max |score diff| {max(p[0] for p in pairs):.2e}, "
        f"min IoU {min(p[1] for p in pairs):.6f}"
        if pairs
        else ""
    )
    return (
        f"detforge {n_ours} detections, {sum(m is not None for m in fwd) / max(n_ours, 1):.1%} "
        f"found in darknet's; darknet {n_theirs}, "
        f"{sum(m is not None for m in back) / max(n_theirs, 1):.1%} found in detforge's{worst}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--darknet", type=Path, required=True, help="the darknet executable")
    parser.add_argument("--images", type=Path, nargs="+", required=True)
    parser.add_argument("--cfg-dir", type=Path, default=Path("../shared/darknet/cfg"))
    parser.add_argument("--yolov3-tiny", type=Path, default=None)
    parser.add_argument(
        "--models", nargs="+", default=["yolov3-tiny", "yolov4-tiny", "yolov7-tiny", "yolov4-csp"]
    )
    parser.add_argument("--thresh", type=float, nargs="+", default=[0.25])
    parser.add_argument(
        "--spread", type=float, default=4.0, help="random heads: logit steepening [4]"
    )
    parser.add_argument(
        "--map",
        nargs="*",
        default=None,
        metavar="KEY=VALUE",
        help="also compare 'detector map': default settings, then once per points=N / iou=T",
    )
    args = parser.parse_args()

    import torch
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.models.darknet.helpers import randomize

    from detforge.models.darknet.model import detect, load_darknet
    from detforge.models.darknet.weights import write_weights

    torch.set_num_threads(1)
    images = [p.resolve() for p in args.images]
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in images]
    sizes = [(a.shape[1], a.shape[0]) for a in arrays]
    names_file = args.cfg_dir / "coco.names"
    names = names_file.read_text().splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "coco.data"
        data.write_text(f"classes=80\nnames={names_file.resolve()}\n")
        for model in args.models:
            real = args.yolov3_tiny if model == "yolov3-tiny" else None
            cfg = (real or args.cfg_dir) / f"{model}.cfg"
            net = load_darknet(cfg, real / f"{model}.weights" if real else None)
            if real is None:
                randomize(net, arrays[0])
                calibrate_heads(net, arrays[0], spread=args.spread)
                weights = write_weights(net, work / f"{model}.weights")
            else:
                weights = real / f"{model}.weights"
            for thresh in args.thresh:
                theirs = darknet_detections(
                    args.darknet,
                    data,
                    cfg.resolve(),
                    weights.resolve(),
                    images,
                    sizes,
                    thresh,
                    work,
                )
                ours = []
                for arr in arrays:
                    d = detect(net, arr, thresh=thresh)
                    ours.append(
                        [
                            (names[c], float(s), b.astype(float))
                            for c, s, b in zip(d.classes, d.scores, d.boxes, strict=True)
                        ]
                    )
                print(
                    f"{model} ({'real' if real else 'random'} weights, {len(images)} images, "
                    f"thresh {thresh}): {_compare(ours, theirs)}",
                    flush=True,
                )
            if real is not None and args.map is not None:
                variants: list[list[str]] = [[]] + [[f"--{a}"] for a in args.map]
                for extra in variants:
                    sub = work / ("map" + "".join(extra).replace("-", "_").replace("=", "_"))
                    sub.mkdir()
                    compare_map(
                        args.darknet,
                        names_file,
                        cfg.resolve(),
                        weights.resolve(),
                        images,
                        sub,
                        extra,
                    )


if __name__ == "__main__":
    main()
