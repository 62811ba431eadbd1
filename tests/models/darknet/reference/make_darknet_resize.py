"""Regenerate darknet_resize.npz (see README.md): run in a Darknet build folder holding ./rz,
as ``python make_darknet_resize.py OUT.npz``."""

import os
import subprocess
import sys

import numpy as np

env = dict(os.environ, LD_LIBRARY_PATH=".")
rng = np.random.default_rng(20261206)
# src_h, src_w, out_h, out_w, letter_box
cases = [(14, 9, 12, 12, 0), (8, 8, 24, 24, 0), (23, 37, 16, 16, 0), (1, 7, 4, 4, 0),
         (7, 1, 5, 4, 0), (5, 7, 3, 4, 0), (12, 12, 12, 12, 0), (40, 30, 32, 32, 0),
         (13, 33, 16, 16, 1), (30, 44, 32, 32, 1), (44, 30, 32, 32, 1)]  # fmt: skip
arrs = {}
for i, (H, W, h, w, letter) in enumerate(cases):
    src = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    args = ["./rz", str(H), str(W), str(h), str(w)] + (["l"] if letter else [])
    out = subprocess.run(args, input=src.tobytes(), capture_output=True, env=env, check=True)
    arrs[f"src{i}"] = src
    arrs[f"out{i}"] = np.frombuffer(out.stdout, np.float32).reshape(3, h, w)
arrs["cases"] = np.array(cases, np.int64)
np.savez_compressed(sys.argv[1], **arrs)
