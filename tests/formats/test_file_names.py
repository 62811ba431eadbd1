"""formats.common.unique_file_names: unique stems, and names that fit the file system."""

from __future__ import annotations

import os
from pathlib import Path

from detforge.formats.common import NAME_MAX, unique_file_names


def test_unique_stems_get_the_parent_then_a_counter() -> None:
    got = unique_file_names(["a/img.jpg", "b/img.png", "c.jpg", "b/IMG.jpg"])
    # img/img/IMG clash case-insensitively: parent prefixed, then a counter; c keeps its name.
    assert got == ["a_img.jpg", "b_img.png", "c.jpg", "b_IMG_1.jpg"]


def test_long_names_are_shortened_and_stay_unique(tmp_path: Path) -> None:
    """A 250-byte image name is fine on disk, but 'train_' + it (a clash) or its label name
    would not be: each output name and its .txt label fit NAME_MAX and can be created."""
    long = "n" * 250
    paths = [f"train/{long}.jpg", f"valid/{long}.jpg", f"x/{'é' * 126}.png"]
    names = unique_file_names(paths)
    stems = [os.path.splitext(n)[0] for n in names]
    assert len({s.lower() for s in stems}) == 3
    for stem in stems:
        assert len(stem.encode()) + len(".txt") <= NAME_MAX
        (tmp_path / f"{stem}.txt").write_text("")  # the file system takes it
    assert unique_file_names(["short.jpg"]) == ["short.jpg"]
