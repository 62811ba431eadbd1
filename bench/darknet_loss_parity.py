"""detforge's ``[yolo]`` training loss against a real darknet build's deltas, case by case.

    python bench/darknet_loss_parity.py --darknet-src /tmp/darknet [--cases 20]

``--darknet-src`` is an AlexeyAB/darknet checkout built on the CPU (``make``: its ``obj/*.o``,
``include/`` and ``src/``). The script compiles a small harness against those objects: it
parses a cfg with ``parse_network_cfg_custom``, feeds given raw inputs and truths to
``forward_yolo_layer`` in training mode and writes the layer's ``delta``. detforge's
:class:`~detforge.train.darknet_loss.DarknetYoloLoss` gets the same raw inputs (as the
network's output, requiring grad) and the same truths; its gradient on the raw inputs must be
minus darknet's delta (darknet's ``backward_yolo_layer`` passes ``delta`` on unchanged).

Cases: a 64x64 input, one ``[yolo]`` head of two anchors on a 2x2 (or 4x4) grid, 2-3 classes,
random raw values and random truths crowding the grid (several per cell, some sharing a
class), for each setting a cfg can give: plain, ``scale_x_y``, ``label_smooth_eps``,
``iou_thresh``, ``objectness_smooth``, normalizers, ``focal_loss``, ``counters_per_class``,
``truth_thresh`` and their mixes; ``--cases`` random seeds each. Reported per case: the largest
difference on the x/y, w/h, objectness and class entries, and the count above 1e-4.

Box entries are compared for ``iou_loss=mse`` only: with the IoU losses detforge's gradient
flows through the decoding (``docs``: the loss module's "differences, by design").
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "darknet.h"
#include "network.h"
#include "parser.h"
#include "yolo_layer.h"

static float *read_floats(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); exit(2); }
    float *buf = (float *)calloc(n, sizeof(float));
    size_t got = fread(buf, sizeof(float), n, f);
    fclose(f);
    if (got != n) { fprintf(stderr, "%s: %zu floats, expected %zu\n", path, got, n); exit(2); }
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 2) {
        fprintf(stderr, "usage: harness CFG [RAW TRUTH OUT]\n");
        return 2;
    }
    network net = parse_network_cfg_custom(argv[1], 1, 1);
    int idx = net.n - 1;
    layer l = net.layers[idx];
    if (argc == 2) { printf("SIZES %d %d %d\n", l.outputs, l.truths, l.truth_size); return 0; }
    float *raw = read_floats(argv[2], (size_t)l.outputs);
    float *truth = read_floats(argv[3], (size_t)l.truths);
    network_state state = {0};
    state.net = net;
    state.index = idx;
    state.input = raw;
    state.truth = truth;
    state.train = 1;
    forward_yolo_layer(l, state);
    FILE *out = fopen(argv[4], "wb");
    fwrite(l.delta, sizeof(float), (size_t)l.outputs, out);
    fclose(out);
    return 0;
}
"""

ANCHORS = "10,12, 30,28"
CASES: dict[str, str] = {
    "plain": "",
    "scale_x_y": "scale_x_y=1.1\n",
    "label_smooth_eps": "label_smooth_eps=0.1\n",
    "normalizers": "iou_normalizer=0.5\ncls_normalizer=2.0\nobj_normalizer=1.5\n",
    "iou_thresh": "iou_thresh=0.2\n",
    "objectness_smooth": "objectness_smooth=1\nignore_thresh=0.3\n",
    "focal_loss": "focal_loss=1\n",
    "counters_per_class": "counters_per_class=50,10,200\ncls_normalizer=2.0\n",
    "truth_thresh": "truth_thresh=0.3\n",
    "truth_thresh+smooth": "truth_thresh=0.3\nobjectness_smooth=1\nignore_thresh=0.2\n",
    "focal+counters": "focal_loss=1\ncounters_per_class=50,10,200\n",
    "everything": (
        "focal_loss=1\ncounters_per_class=50,10,200\ntruth_thresh=0.35\niou_thresh=0.25\n"
        "objectness_smooth=1\nignore_thresh=0.3\nlabel_smooth_eps=0.05\nscale_x_y=1.05\n"
    ),
}


def cfg_text(classes: int, grid: int, extra: str) -> str:
    filters = 2 * (5 + classes)
    yolo = {"mask": "0,1", "anchors": ANCHORS, "classes": str(classes), "num": "2",
            "ignore_thresh": ".7", "truth_thresh": "1"}  # fmt: skip
    yolo.update(line.split("=", 1) for line in extra.splitlines() if line)  # type: ignore[arg-type]
    return (
        "[net]\nbatch=1\nsubdivisions=1\nwidth=64\nheight=64\nchannels=3\n\n"
        f"[convolutional]\nfilters={filters}\nsize=1\nstride={64 // grid}\npad=0\n"
        "activation=linear\n\n[yolo]\n" + "".join(f"{k}={v}\n" for k, v in yolo.items())
    )


def build(src: Path, work: Path) -> Path:
    """The harness compiled against darknet's object files."""
    code = work / "harness.c"
    code.write_text(HARNESS)
    objs = sorted(str(p) for p in (src / "obj").glob("*.o") if p.name != "darknet.o")
    out = work / "harness"
    cmd = ["gcc", "-O2", "-fopenmp", f"-I{src / 'include'}", f"-I{src / 'src'}",
           f"-I{src / '3rdparty/stb/include'}", "-o", str(out), str(code), *objs,
           "-lm", "-lpthread", "-lstdc++"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def darknet_delta(harness: Path, cfg: Path, raw: np.ndarray, truths: np.ndarray) -> np.ndarray:
    info = subprocess.run([str(harness), str(cfg)], capture_output=True, text=True, check=True)
    line = next(x for x in info.stdout.splitlines() if x.startswith("SIZES"))
    outputs, n_truth, size = (int(v) for v in line.split()[1:])
    assert outputs == raw.size, (outputs, raw.size)
    buf = np.zeros(n_truth, np.float32)
    for t, row in enumerate(truths):
        buf[t * size : t * size + 5] = row
    work = cfg.parent
    raw.astype(np.float32).tofile(work / "raw.bin")
    buf.tofile(work / "truth.bin")
    subprocess.run(
        [str(harness), str(cfg), str(work / "raw.bin"), str(work / "truth.bin"),
         str(work / "delta.bin")],
        capture_output=True, check=True,
    )  # fmt: skip
    return np.fromfile(work / "delta.bin", np.float32)


def detforge_delta(cfg_text_: str, raw: np.ndarray, truths: np.ndarray) -> np.ndarray:
    import torch

    from detforge.models.darknet.cfg import parse_cfg_text
    from detforge.models.darknet.loss_spec import YoloLossSpec
    from detforge.train.darknet_loss import DarknetYoloLoss

    cfg = parse_cfg_text(cfg_text_)
    yolo = next(s for s in cfg.layers if s.name == "yolo")
    spec = YoloLossSpec.from_options(yolo.options)
    x = torch.from_numpy(raw.copy()).requires_grad_(True)
    cx, cy, w, h = (truths[:, k] * 64 for k in range(4))
    batch = {
        "img": torch.zeros(1, 3, 64, 64, dtype=torch.uint8),
        "batch_idx": torch.zeros(len(truths), dtype=torch.long),
        "cls": torch.from_numpy(truths[:, 4].astype(np.int64)),
        "bboxes": torch.from_numpy(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)),
    }
    loss, _ = DarknetYoloLoss([spec])([x], batch)
    loss.backward()
    assert x.grad is not None
    return -x.grad.numpy().ravel()


def random_case(rng: np.random.Generator, classes: int, grid: int) -> tuple[np.ndarray, ...]:
    raw = rng.normal(0, 1.5, (1, 2 * (5 + classes), grid, grid)).astype(np.float32)
    k = int(rng.integers(1, 3 * grid))
    # centres away from the cell borders: darknet and detforge floor the same float32 values,
    # but the truth's round trip through pixels may move a centre across a border
    cell = rng.integers(0, grid, (k, 2))
    centre = (cell + rng.uniform(0.1, 0.9, (k, 2))) / grid
    if k > 1:  # some truths share a centre cell
        centre[1] = (cell[0] + rng.uniform(0.1, 0.9, 2)) / grid
    size = rng.uniform(0.1, 0.6, (k, 2))
    cls = rng.integers(0, classes, (k, 1))
    return raw, np.concatenate([centre, size, cls], 1).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--darknet-src", type=Path, required=True)
    ap.add_argument("--cases", type=int, default=10, help="random seeds per setting [10]")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dkloss-"))
    harness = build(args.darknet_src, work)
    print(f"{'setting':22s} {'x,y':>9s} {'w,h':>9s} {'obj':>9s} {'cls':>9s}  "
          "entries > 1e-4 | darknet's entries changed by the setting")  # fmt: skip
    worst = 0.0
    plain: dict[int, np.ndarray] = {}
    for name, extra in CASES.items():
        classes = 3
        diffs = np.zeros(4)
        bad = changed = 0
        for seed in range(args.cases):
            rng = np.random.default_rng(seed)
            grid = 2 if seed % 2 else 4
            text = cfg_text(classes, grid, extra)
            cfg = work / "case.cfg"
            cfg.write_text(text)
            raw, truths = random_case(rng, classes, grid)
            ref = darknet_delta(harness, cfg, raw, truths).reshape(2, 5 + classes, -1)
            got = detforge_delta(text, raw, truths).reshape(2, 5 + classes, -1)
            d = np.abs(ref - got)
            parts = [d[:, 0:2].max(), d[:, 2:4].max(), d[:, 4].max(), d[:, 5:].max()]
            diffs = np.maximum(diffs, parts)
            bad += int((d > 1e-4).sum())
            base = plain.setdefault(seed, ref)  # the first setting is the plain one
            changed += int((np.abs(ref - base) > 1e-6).sum())
        worst = max(worst, float(diffs.max()))
        cells = " ".join(f"{v:9.2e}" for v in diffs)
        print(f"{name:22s} {cells}  {bad:14d} | {changed}")
    print(f"largest difference: {worst:.2e}")


if __name__ == "__main__":
    main()
