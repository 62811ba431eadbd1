"""The output-folder rule (``detforge.utils.outdir``): only what detforge made is replaced."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from detforge.cli.main import main
from detforge.errors import DetforgeError
from detforge.utils.outdir import (
    MANIFEST,
    out_folder,
    output_dir,
    read_manifest,
    refuse_incomplete,
    refuse_overlap,
    removed_on_error,
)
from tests.reliability.builders import darknet_project, tree_digest


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.mark.parametrize("to", ["ultralytics", "voc", "darknet", "coco", "tfrecord"])
def test_convert_into_the_image_folder_is_refused_and_nothing_changes(
    tmp_path: Path, to: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_project(tmp_path / "proj")
    before = tree_digest(tmp_path / "proj")
    assert main(["convert", str(data), str(tmp_path / "proj" / "data"), "--to", to]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "detforge convert: error:" in err[0]
    assert tree_digest(tmp_path / "proj") == before


def test_overwrite_replaces_only_what_detforge_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_project(tmp_path / "proj")
    out = tmp_path / "out"
    assert main(["convert", str(data), str(out), "--to", "ultralytics"]) == 0
    manifest = read_manifest(out)
    assert manifest is not None and manifest["complete"] is True
    assert "data.yaml" in manifest["files"] and any(
        f.startswith("labels/") for f in manifest["files"]
    )
    (out / "my_notes.txt").write_text("mine")
    assert main(["convert", str(data), str(out), "--to", "ultralytics"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["convert", str(data), str(out), "--to", "ultralytics", "--overwrite"]) == 0
    assert (out / "my_notes.txt").read_text() == "mine"
    assert "my_notes.txt" not in json.loads((out / MANIFEST).read_text())["files"]
    # a different target format over the earlier output: the old labels/ go, notes stay
    assert main(["convert", str(data), str(out), "--to", "voc", "--overwrite"]) == 0
    assert not (out / "labels").exists() and (out / "Annotations").is_dir()
    assert (out / "my_notes.txt").read_text() == "mine"


def test_foreign_non_empty_out_and_out_a_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_project(tmp_path / "proj")
    busy = tmp_path / "busy"
    (busy / "labels").mkdir(parents=True)
    (busy / "labels" / "x.txt").write_text("keep")
    for extra in ([], ["--overwrite"]):
        assert main(["convert", str(data), str(busy), "--to", "ultralytics", *extra]) == 2
        assert "not written by detforge" in capsys.readouterr().err
    assert (busy / "labels" / "x.txt").read_text() == "keep"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["convert", str(data), str(afile), "--to", "coco"]) == 2
    assert "existing file" in capsys.readouterr().err
    assert main(["check", str(data), "--fix", str(afile)]) == 2
    assert afile.read_text() == "x"


def test_error_while_writing_removes_the_partial_output(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with pytest.raises(DetforgeError), output_dir(out, command="t"):
        (out / "half.txt").write_text("x")
        raise DetforgeError("bad source found half way")
    assert not out.exists()


def test_kill_leaves_an_incomplete_marker_that_readers_refuse_and_a_rerun_clears(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_project(tmp_path / "proj")
    out = tmp_path / "out"
    assert main(["convert", str(data), str(out), "--to", "ultralytics"]) == 0
    # simulate a kill -9 half way through a second run: marker rewritten, a hidden stage left
    text = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(
        json.dumps({"format": text["format"], "complete": False, "command": "convert", "kept": []})
    )
    (out / ".labels.abc.tmp").mkdir()
    (out / ".labels.abc.tmp" / "im0.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    for cmd in (["info", str(out / "data.yaml")], ["check", str(out / "data.yaml")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "incomplete detforge output" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(DetforgeError, match="incomplete"):
        refuse_incomplete(out / "labels" / "train")
    assert main(["convert", str(data), str(out), "--to", "ultralytics"]) == 0  # no --overwrite
    assert "interrupted" in capsys.readouterr().out
    assert not (out / ".labels.abc.tmp").exists()
    assert main(["info", str(out / "data.yaml")]) == 0


def test_fix_and_split_follow_the_same_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_project(tmp_path / "proj")
    before = tree_digest(tmp_path / "proj")
    assert main(["check", str(data), "--fix", str(tmp_path / "proj" / "data")]) == 2
    assert main(["check", str(data), "--fix", str(tmp_path / "fixed")]) == 0
    assert main(["check", str(data), "--fix", str(tmp_path / "fixed")]) == 2
    assert main(["check", str(data), "--fix", str(tmp_path / "fixed"), "--overwrite"]) == 0
    assert main(["split", str(tmp_path / "proj" / "data"), "--out", str(tmp_path / "proj")]) == 2
    assert main(["split", str(tmp_path / "proj" / "data"), "--out", str(tmp_path / "s")]) == 0
    assert read_manifest(tmp_path / "s") is not None
    capsys.readouterr()
    assert tree_digest(tmp_path / "proj") == before


def test_output_folders_honour_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        _converted_folders_are_0755(tmp_path)
    finally:
        os.umask(old)


def _converted_folders_are_0755(tmp_path: Path) -> None:
    data = darknet_project(tmp_path / "proj")
    for to in ("ultralytics", "voc"):
        out = tmp_path / to
        assert main(["convert", str(data), str(out), "--to", to]) == 0
        for d in [out, *[p for p in out.rglob("*") if p.is_dir() and not p.is_symlink()]]:
            mode = stat.S_IMODE(d.stat().st_mode)
            assert mode == 0o755, (d, oct(mode))


def test_overwrite_never_follows_a_link_out_of_out(tmp_path: Path) -> None:
    data = darknet_project(tmp_path / "proj")
    out = tmp_path / "out"
    assert main(["convert", str(data), str(out), "--to", "ultralytics"]) == 0
    # a person swaps OUT/labels for a link to their own labels: --overwrite must not reach them
    mine = tmp_path / "mine"
    (out / "labels").rename(mine)
    (out / "labels").symlink_to(mine)
    before = tree_digest(mine)
    assert main(["convert", str(data), str(out), "--to", "voc", "--overwrite"]) == 0
    assert tree_digest(mine) == before


def test_a_foreign_manifest_name_is_never_a_licence_to_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_project(tmp_path / "proj")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / MANIFEST).write_text("my notes, not JSON")
    (mine / "keep.txt").write_text("keep")
    before = tree_digest(mine)
    for extra in ([], ["--overwrite"]):
        assert main(["convert", str(data), str(mine), "--to", "coco", *extra]) == 2
        assert "not a detforge output manifest" in capsys.readouterr().err
    assert tree_digest(mine) == before
    inner = darknet_project(mine / "proj")  # a dataset below it still reads
    assert main(["info", str(inner)]) == 0


def test_removed_on_error_removes_only_what_the_block_made(tmp_path: Path) -> None:
    made = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError), removed_on_error(made) as o:
        (o / "sub").mkdir(parents=True)
        (o / "sub" / "x.jpg").write_text("new")
        raise RuntimeError
    assert not (tmp_path / "a").exists()
    old = tmp_path / "old"
    (old / "sub").mkdir(parents=True)
    (old / "sub" / "mine.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt), removed_on_error(old):
        (old / "sub" / "mine.txt").write_text("replaced")  # existed: never removed
        (old / "sub" / "new.jpg").write_text("new")
        (old / "fresh").mkdir()
        raise KeyboardInterrupt
    assert sorted(p.name for p in old.rglob("*")) == ["mine.txt", "sub"]
    with removed_on_error(old):
        (old / "kept.txt").write_text("done")  # no error: everything stays
    assert (old / "kept.txt").is_file()


def test_out_folder_spells_out_as_the_folder_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path.resolve()
    (root / "proj" / "x").mkdir(parents=True)
    (root / "deep" / "real").mkdir(parents=True)
    os.symlink(root / "deep" / "real", root / "lnk")
    monkeypatch.chdir(root / "proj")
    assert out_folder("x/") == out_folder("x/.") == out_folder("./x") == Path("x")
    for here in ("x/..", ".", "nx/..", "x/../x/.."):
        assert out_folder(here) == root / "proj", here
    assert out_folder("x/../y/") == root / "proj" / "y"
    assert out_folder("runs/a") == Path("runs/a")  # kept as typed
    # `..` after a link is the folder above the link's target, as the system reads it
    assert out_folder(root / "lnk" / "..") == root / "deep"
    assert out_folder(root / "lnk") == root / "lnk"  # a link named as OUT stays a link
    assert out_folder("/") == Path("/")


@pytest.mark.parametrize(("out", "where"), [("nx/..", "."), (".", "."), ("sub/", "sub")])
def test_convert_out_spelled_with_dots_or_a_slash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str, where: str
) -> None:
    """OUT ``nx/..`` (nx missing), ``.`` and ``sub/`` is the folder it names: written there,
    and no folder ``nx`` made on the way."""
    data = darknet_project(tmp_path / "proj")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert main(["convert", str(data), out, "--to", "coco", "--images", "none"]) == 0
    dest = (tmp_path / "here" / where).resolve()
    assert read_manifest(dest) is not None and (dest / "annotations").is_dir()
    assert sorted(os.listdir(tmp_path / "here")) == (
        [MANIFEST, "annotations"] if where == "." else ["sub"]
    )


def test_overlap_guard_sees_through_a_link_to_the_folder(tmp_path: Path) -> None:
    """OUT inside the source reached through a link (either way round) is refused, named as
    it was given; a link beside the source is not the source."""
    (tmp_path / "src" / "images").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "src", tmp_path / "lnk")
    os.symlink(tmp_path / "elsewhere", tmp_path / "other")
    for out, read in [
        (tmp_path / "lnk" / "images" / "out", tmp_path / "src"),  # OUT through the link
        (tmp_path / "src" / "out", tmp_path / "lnk"),  # the source through the link
        (tmp_path / "lnk" / ".." / "src" / "out", tmp_path / "src"),
        (tmp_path / "lnk", tmp_path / "src" / "images"),  # OUT holds the source
    ]:
        with pytest.raises(DetforgeError, match="OUT overlaps a folder") as err:
            refuse_overlap(out, [read])
        assert err.value.path == str(out)
    refuse_overlap(tmp_path / "other" / "out", [tmp_path / "lnk"])  # no overlap: no error


def test_convert_into_the_image_folder_through_a_link_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The list names the images through a link to their folder (and OUT uses the real
    name), or OUT goes through the link: refused both ways, nothing written."""
    data = darknet_project(tmp_path / "proj")
    os.symlink(tmp_path / "proj" / "data", tmp_path / "lnk")
    for lst in ("train.txt", "valid.txt"):
        f = data.parent / lst
        f.write_text(f.read_text().replace(str(tmp_path / "proj" / "data"), str(tmp_path / "lnk")))
    before = tree_digest(tmp_path / "proj")
    for out in (tmp_path / "proj" / "data" / "coco", tmp_path / "lnk" / "coco"):
        assert main(["convert", str(data), str(out), "--to", "coco"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"detforge convert: error: {out}: OUT overlaps a folder the source is read from "
            f"({(tmp_path / 'proj' / 'data').resolve()}); detforge never writes where its "
            "input lives. Choose a folder outside the dataset"
        ]
    assert tree_digest(tmp_path / "proj") == before


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "DATA", "", "--to", "coco"],
        ["check", "DATA", "--fix", ""],
        ["stats", "DATA", "--out", ""],
        ["show", "DATA", "--out", ""],
        ["split", "DATA", "--out", ""],
    ],
)
def test_an_empty_out_is_one_error_in_every_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    """``--out ''`` (an unset shell variable) meant the current folder for convert,
    ``runs/<command>`` for show, and nothing at all for ``check --fix ''`` and
    ``stats --out ''`` (exit 0, no output written): now one error, nothing written."""
    data = darknet_project(tmp_path / "proj")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    before = tree_digest(tmp_path)
    assert main([str(data) if a == "DATA" else a for a in argv]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"detforge {argv[0]}: error: OUT is an empty name (an unset shell variable?); give a "
        "folder ('.' for this one)"
    ]
    assert tree_digest(tmp_path) == before and os.listdir(tmp_path / "here") == []


def test_out_the_system_cannot_look_up_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder name over the system's length limit, or a path through a loop of links, was
    an OSError traceback from every command that takes an output folder."""
    long = tmp_path / ("n" * 300)
    with pytest.raises(DetforgeError) as err:
        out_folder(long)
    assert str(err.value) == f"{long}: OUT cannot be used (File name too long)"
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(DetforgeError) as err:
        out_folder(tmp_path / "loop" / "x")
    assert (
        str(err.value)
        == f"{tmp_path}/loop/x: OUT cannot be used (Too many levels of symbolic links)"
    )
    data = darknet_project(tmp_path / "proj")
    assert main(["convert", str(data), str(long), "--to", "coco"]) == 2
    assert main(["show", str(data), "--out", str(long)]) == 2
    assert capsys.readouterr().err.count("OUT cannot be used (File name too long)") == 2


def test_out_with_a_control_character_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pasted line break in OUT made a folder whose name split every line naming it."""
    with pytest.raises(DetforgeError) as err:
        out_folder(tmp_path / "a\nb")
    assert str(err.value) == (
        f"OUT {str(tmp_path / 'a')!r}"[:-1] + "\\nb' holds a control character (a line "
        "break?); give a folder name without one"
    )
    data = darknet_project(tmp_path / "proj")
    assert main(["convert", str(data), str(tmp_path / "x\ty"), "--to", "coco"]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "holds a control character" in err_lines[0], err_lines
    assert not any("\t" in p.name or "\n" in p.name for p in tmp_path.iterdir())
