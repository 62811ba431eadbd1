"""``kill -9`` at every kind of point of ``convert`` and ``check --fix``, then a re-run.

The command runs in a forked child whose file-system calls (``os.replace``, ``os.link``,
``os.symlink``, ``os.mkdir``, ``os.unlink``, ``os.rmdir``) are counted; the child dies with
``os._exit`` -- no ``finally``, no ``except``, exactly like ``kill -9`` -- just before call
number ``k``. Kill points are a seeded sample of all calls of a clean run (plus the first and
the last; every call with ``DETFORGE_FUZZ_FULL=1``). After each kill: the source is
byte-identical, nothing exists outside OUT, an OUT marked incomplete is refused by ``info``,
and re-running the same command gives exactly the clean run's output. Two more runs kill a
real ``python -m detforge`` process with SIGKILL at a seeded random moment.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from detforge.utils.outdir import MANIFEST, read_manifest
from tests.reliability.builders import darknet_project, tree_digest
from tests.reliability.generators import FULL, SEED, _tf_example, _write_tf
from tests.reliability.harness import SourceGuard, assert_clean_outcome, run_cli

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

HOOKED = ("replace", "link", "symlink", "mkdir", "unlink", "rmdir")
POINTS = 10**9 if FULL else 6  # seeded kill points per scenario, besides the first and last


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path_factory.mktemp("cache")))


def run_killed(argv: list[str], kill_at: int | None) -> tuple[int, int]:
    """Run ``detforge ARGV`` in a forked child that dies before file-system call ``kill_at``
    (``None``: never). Returns ``(exit status, calls made)``."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        count = [0]

        def hook(fn: Callable[..., object]) -> Callable[..., object]:
            def inner(*a: object, **kw: object) -> object:
                count[0] += 1
                if kill_at is not None and count[0] >= kill_at:
                    os.write(write_fd, str(count[0]).encode())
                    os._exit(137)  # like SIGKILL: no cleanup handlers run
                return fn(*a, **kw)

            return inner

        for name in HOOKED:
            setattr(os, name, hook(getattr(os, name)))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 -- the child exits
        from detforge.cli.main import main

        try:
            rc = main(argv)
        except BaseException:
            rc = 99
        os.write(write_fd, str(count[0]).encode())
        os._exit(rc)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    calls = int(os.read(read_fd, 64) or b"0")
    os.close(read_fd)
    return os.waitstatus_to_exitcode(status), calls


def _out_digest(out: Path) -> tuple[dict[str, str], list[str]]:
    digest = {k: v for k, v in tree_digest(out).items() if k != MANIFEST}
    manifest = read_manifest(out)
    assert manifest is not None and manifest["complete"] is True
    return digest, manifest["files"]


def exercise(
    root: Path, argv: list[str], out: Path, *, prepare: Callable[[], None], ok: tuple[int, ...]
) -> int:
    """Clean run for reference, then kill at sampled points and re-run; returns points tried."""
    for _ in range(2):  # the first run also fills the index cache (calls outside OUT)
        prepare()
        rc, total = run_killed(argv, None)
        assert rc in ok, f"clean run of {argv} exited {rc}"
    reference = _out_digest(out)
    rng = random.Random(f"{SEED}:{' '.join(argv[:1] + argv[3:])}")
    points = sorted({1, total, *rng.sample(range(1, total + 1), min(POINTS, total))})
    for k in points:
        prepare()
        guard = SourceGuard(root, out=out)
        rc, _ = run_killed(argv, k)
        assert rc == 137, f"{argv} killed at call {k}: exit {rc}"
        guard.check(f"kill at {k}")
        manifest = read_manifest(out) if out.is_dir() else None
        if manifest is not None and manifest.get("complete") is not True:
            info = run_cli(["info", str(out)])
            assert_clean_outcome(info, allowed=(2,))
            assert "incomplete detforge output" in info.err
        rerun = list(argv)
        if manifest is not None and manifest.get("complete") is True and "--overwrite" not in rerun:
            rerun.append("--overwrite")  # killed after the output was complete (re-check, cache)
        again = run_cli(rerun)
        assert_clean_outcome(again, allowed=ok)
        guard.check(f"re-run after kill at {k}")
        assert _out_digest(out) == reference, f"{argv}: re-run after kill at {k} differs"
    print(f"kill points: {len(points)} of {total} calls: {' '.join(argv[:1] + argv[3:])}")
    return len(points)


@pytest.mark.parametrize("to", ["darknet", "ultralytics", "coco", "voc", "tfrecord"])
def test_convert_killed_anywhere_then_rerun(tmp_path: Path, to: str) -> None:
    data = darknet_project(tmp_path / "proj")
    out = tmp_path / "out"

    def fresh() -> None:
        if out.exists():
            shutil.rmtree(out)

    n = exercise(
        tmp_path, ["convert", str(data), str(out), "--to", to], out, prepare=fresh, ok=(0,)
    )
    assert n >= 3


def test_convert_overwrite_killed_anywhere_then_rerun(tmp_path: Path) -> None:
    data = darknet_project(tmp_path / "proj")
    out = tmp_path / "out"

    def earlier_output() -> None:  # a complete ultralytics output, plus a file of the user's
        if out.exists():
            shutil.rmtree(out)
        assert run_cli(["convert", str(data), str(out), "--to", "ultralytics"]).rc == 0
        (out / "notes.txt").write_text("mine")

    argv = ["convert", str(data), str(out), "--to", "voc", "--overwrite"]
    exercise(tmp_path, argv, out, prepare=earlier_output, ok=(0,))
    assert (out / "notes.txt").read_text() == "mine"


def test_check_fix_killed_anywhere_then_rerun(tmp_path: Path) -> None:
    data = darknet_project(tmp_path / "proj")
    (tmp_path / "proj" / "data" / "im1.txt").write_text("0 0.5 0.5 0 0\n7 0.5 0.5 0.2 0.2\n")
    out = tmp_path / "fixed"

    def fresh() -> None:
        if out.exists():
            shutil.rmtree(out)

    exercise(
        tmp_path,
        ["check", str(data), "--fix", str(out), "--no-cache"],
        out,
        prepare=fresh,
        ok=(0, 1),
    )


def test_check_fix_of_records_killed_anywhere_then_rerun(tmp_path: Path) -> None:
    record = _write_tf([_tf_example({}), _tf_example({})], lambda d: d[:-7])(tmp_path)
    out = tmp_path / "salvaged"

    def fresh() -> None:
        if out.exists():
            shutil.rmtree(out)

    exercise(tmp_path, ["check", str(record), "--fix", str(out)], out, prepare=fresh, ok=(0, 1))


@pytest.mark.parametrize("seed", [1, 2])
def test_real_sigkill_at_a_random_moment(tmp_path: Path, seed: int) -> None:
    data = darknet_project(tmp_path / "proj", n=40)
    out = tmp_path / "out"
    argv = ["convert", str(data), str(out), "--to", "voc", "--images", "copy"]
    assert run_cli(argv).rc == 0
    reference = _out_digest(out)
    shutil.rmtree(out)
    guard = SourceGuard(tmp_path, out=out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "detforge", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(random.Random(seed).uniform(0.2, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    guard.check("SIGKILL")
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is not None and manifest.get("complete") is True:
        argv.append("--overwrite")  # the process finished before the signal came
    again = run_cli(argv)
    assert_clean_outcome(again, allowed=(0,))
    assert _out_digest(out) == reference
    assert json.loads((out / MANIFEST).read_text())["complete"] is True
