"""``detforge doctor``: can this machine train? Versions, GPUs, and a tiny CUDA op."""

from __future__ import annotations

import argparse
import json

HELP = "check Python, PyTorch, CUDA, cuDNN and the GPUs before training"
DESCRIPTION = """\
Report what training depends on and whether the pieces fit together:

  * Python and PyTorch versions, the CUDA version PyTorch was built for, the CUDA version the
    installed NVIDIA driver supports, and cuDNN;
  * each GPU with its compute capability and free memory;
  * a tiny matmul and cuDNN convolution on the GPU, checked against the CPU.

Without a GPU it says 'no CUDA' and exits 0 (training then runs on the CPU). Exit status 1
means a problem was found; each PROBLEM line says what to do.

examples:
  detforge doctor
  detforge doctor --json doctor.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument(
        "--no-op-test", action="store_true", help="skip running the tiny CUDA operation"
    )


def run(args: argparse.Namespace) -> int:
    from detforge.utils.doctor import run_doctor
    from detforge.utils.io import atomic_write_text

    report = run_doctor(op_test=not args.no_op_test)
    for line in report.lines():
        print(line)
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
    return 1 if report.problems else 0
