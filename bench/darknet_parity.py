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
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

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


if __name__ == "__main__":
    main()
