"""``detforge export``: write a trained checkpoint or a Darknet network as an NMS-free ONNX
model, or a Darknet network back to .cfg/.weights/.names."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from detforge.errors import DetforgeError
from detforge.utils.textfile import require_file

if TYPE_CHECKING:
    from detforge.predict.writers import InputGuard

HELP = "export a checkpoint or Darknet network to ONNX, or a Darknet network to .cfg/.weights"
DESCRIPTION = """\
Export WEIGHTS (a detforge checkpoint, e.g. runs/train/obj/weights/best.pt) to ONNX.
Batch-norm is folded into the convolutions; the graph has no NMS, so any runtime can run it:

  input  'images'  (B, 3, H, W) float32 RGB in [0, 1] (float16 with --half), H and W
                   multiples of 32 (letterbox your images; fixed to --imgsz unless --dynamic)
  output 'output'  (B, A, 4 + C): A anchors (stride 8 first, then 16, 32; row-major), each
                   x1, y1, x2, y2 in input pixels, then C class probabilities (sigmoid)

The class names, input size and layout are stored in the model's metadata ('detforge' key),
and 'detforge predict model.onnx ...' runs the file like a checkpoint. After writing, the file
is run with onnxruntime and compared with PyTorch; a mismatch is an error.

The file goes beside the checkpoint (best.pt -> best.onnx), or into the folder --out DIR
(DIR/best.onnx; an --out ending in .onnx names the file itself). An existing file is only
replaced with --exist-ok. The input size defaults to the checkpoint's training size.

examples:
  detforge export runs/train/obj/weights/best.pt   # -> runs/train/obj/weights/best.onnx
  detforge export best.pt --imgsz 416 -o models/cells.onnx
  detforge export best.pt --dynamic --out deploy/          # any batch and size (multiples of 32)
  detforge export best.pt --half --out gpu/                # float16, for GPU runtimes

A Darknet network (a .weights with its --cfg [default: the same-stem .cfg] and --names, or a
checkpoint fine-tuned from one) goes to ONNX with Darknet's box decoding in the graph, at the
cfg's size (--dynamic: the batch axis only):

  input  'images'  (B, 3, net_h, net_w) float32 RGB in [0, 1] (the image stretched to the
                   cfg's size, or letterboxed when the cfg says letter_box=1)
  output 'output'  (B, N, 5 + C): per [yolo] head, rows by grid row, column, anchor: cx, cy,
                   w, h relative to the input, objectness, C class probabilities; no NMS

Its metadata records the heads, letter_box, NMS kind and the cfg, so 'detforge predict/val/map
model.onnx' and detforge.load() run it with Darknet's resize, thresholds and NMS:
  detforge export yolov4-tiny.weights --names obj.names --to onnx   # -> yolov4-tiny.onnx

Darknet (--to darknet): a Darknet network -- a fine-tuned checkpoint of one, or a
.weights with its --cfg -- is written to --out DIR as DIR/<name>.cfg, <name>.weights and
<name>.names, which darknet and OpenCV's importer load and run with the same detections:
  detforge export runs/train/obj/weights/best.pt --to darknet --out deploy/
  detforge export yolov4-tiny.weights --names obj.names --to darknet --out deploy/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import add_darknet_model_options
    from detforge.utils.outputs import add_exist_ok_option

    parser.add_argument("weights", help="detforge checkpoint (.pt) or Darknet .weights")
    parser.add_argument(
        "--to", dest="format", default="onnx", choices=["onnx", "darknet"],
        help="output format [onnx]",
    )  # fmt: skip
    parser.add_argument(  # the first spelling, kept for scripts
        "--format", dest="format", choices=["onnx", "darknet"], help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        nargs="+",
        default=None,
        metavar="S",
        help="input size: S, or H W (multiples of 32) [the checkpoint's training size, else "
        "640; a Darknet network: its cfg's size]",
    )
    parser.add_argument("--batch", type=int, default=1, help="fixed batch size [1]")
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="dynamic batch, height and width axes (a Darknet network: the batch axis)",
    )
    parser.add_argument("--half", action="store_true", help="float16 weights and input")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version [17]")
    parser.add_argument(
        "-o", "--out", metavar="PATH",
        help="output folder [beside WEIGHTS]; a name ending in .onnx: the file itself",
    )  # fmt: skip
    add_exist_ok_option(parser)
    parser.add_argument("--name", default=None, help="--to darknet: file stem [the weights' stem]")
    parser.add_argument("--no-verify", action="store_true", help="skip the onnxruntime comparison")
    parser.add_argument(
        "--device", default="cpu", help="trace and verify on: cpu, cuda, cuda:N [cpu]"
    )
    add_darknet_model_options(parser)


def _input_guard(args: argparse.Namespace) -> InputGuard:
    """An :class:`~detforge.predict.writers.InputGuard` of what export reads: WEIGHTS, its
    --cfg and --names, and the same-stem .cfg and .names it may find beside WEIGHTS."""
    from detforge.predict.writers import InputGuard, model_files

    return InputGuard([], files=model_files(args.weights, cfg=args.cfg, names=args.names))


def _out_folder(args: argparse.Namespace, guard: InputGuard) -> None:
    """Refuse an ``-o`` that is one of the inputs, or an existing file where a folder is meant."""
    from detforge.utils.io import blocking_file
    from detforge.utils.outdir import out_folder

    out_folder(args.out)  # '' (not "."), a name the system cannot look up: one error
    guard.check(args.out, option="-o/--out")
    blocker = blocking_file(args.out)
    if blocker is not None:
        raise DetforgeError(
            "is an existing file, not a folder; -o/--out names the folder to write into"
            + (" (or an .onnx file)" if args.format == "onnx" else ""),
            path=blocker,
        )


def _export_darknet(args: argparse.Namespace) -> int:
    """--to darknet: a Darknet network (a .weights + cfg, or a checkpoint holding one)."""
    from pathlib import Path

    from detforge.models.darknet.export import export_darknet
    from detforge.models.darknet.model import is_darknet_file, load_darknet
    from detforge.models.darknet.network import DarknetNetwork
    from detforge.predict.darknet import find_cfg, resolve_names

    if args.out is None:
        raise DetforgeError("--to darknet needs --out DIR (the folder to write into)")
    guard = _input_guard(args)
    _out_folder(args, guard)
    weights = Path(args.weights)
    if weights.suffix.lower() == ".onnx":
        raise DetforgeError(
            "an ONNX model cannot be exported back to Darknet: export the .weights or the "
            "checkpoint it came from with --to darknet", path=weights,
        )  # fmt: skip
    require_file(weights, "weights")
    if is_darknet_file(weights):
        cfg = Path(args.cfg) if args.cfg else find_cfg(weights)
        net = load_darknet(cfg, weights)
        names = resolve_names(args.names, net.num_classes)
    else:
        from detforge.models.checkpoint import load_model

        model, ckpt_names, _ = load_model(weights)
        found = getattr(model, "net", None)
        if not isinstance(found, DarknetNetwork):
            raise DetforgeError(
                "this checkpoint is detforge's own architecture, not a Darknet network; "
                "--to darknet exports networks built from a .cfg (e.g. 'detforge train "
                "--cfg ...'); use --to onnx", path=weights,
            )  # fmt: skip
        net = found
        names = resolve_names(args.names, net.num_classes, dataset_names=ckpt_names)
    name = args.name or (weights.stem.split(".conv.")[0] if weights.stem else "model")
    for kind in ("cfg", "weights", "names"):
        guard.check(Path(args.out) / f"{name}.{kind}", option="-o/--out")
    paths = export_darknet(net, args.out, name, names)
    for kind in ("cfg", "weights", "names"):
        print(f"wrote {paths[kind]}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.format == "darknet":
        return _export_darknet(args)
    from detforge.predict.export import export_onnx

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise DetforgeError(
            "ONNX export needs the onnx package: pip install 'detforge[onnx]'"
        ) from None
    imgsz: int | tuple[int, int] | None = None  # default: the checkpoint's training size
    if args.imgsz is None:
        pass
    elif len(args.imgsz) == 1:
        imgsz = args.imgsz[0]
    elif len(args.imgsz) == 2:
        imgsz = (args.imgsz[0], args.imgsz[1])
    else:
        raise DetforgeError("--imgsz takes one size S or two sizes H W")
    from pathlib import Path

    from detforge.utils.io import make_folder
    from detforge.utils.outdir import out_folder
    from detforge.utils.outputs import claim_file, say_saved

    require_file(args.weights, "weights")
    guard = _input_guard(args)
    target = Path(args.weights).with_suffix(".onnx")
    if args.out is not None:
        out = Path(out_folder(args.out))  # '' or a name too long: one error, not "." or an OSError
        if out.suffix.lower() != ".onnx":
            _out_folder(args, guard)
        target = out if out.suffix.lower() == ".onnx" else out / target.name
    guard.check(target, option="the ONNX file")
    claim_file(target, exist_ok=args.exist_ok, option="the ONNX file")
    make_folder(target.parent)
    path = export_onnx(
        args.weights,
        target,
        imgsz=imgsz,
        dynamic=args.dynamic,
        half=args.half,
        opset=args.opset,
        batch=args.batch,
        verify=not args.no_verify,
        device=args.device,
        cfg=args.cfg,
        names=args.names,
    )
    print(f"{path.stat().st_size / 1e6:.1f} MB, checked against PyTorch" if not args.no_verify
          else f"{path.stat().st_size / 1e6:.1f} MB")  # fmt: skip
    say_saved("ONNX model", path)
    return 0
