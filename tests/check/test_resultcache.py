"""The whole-check result cache: reused only while no file it depends on changed, ctime too."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tests.check.conftest import write_jpeg

from detforge.check import resultcache
from detforge.check.findings import finding
from detforge.utils.filestat import stat_many


def _set_back(path: Path, st: os.stat_result) -> None:
    """Give ``path`` the access and modification times of ``st`` again (``touch -d``)."""
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.usefixtures("stat_backend")
def test_same_size_edit_with_the_mtime_set_back_is_not_reused(tmp_path: Path) -> None:
    src = str(tmp_path / "obj.data")
    (tmp_path / "obj.data").write_text("classes = 1\ntrain = train.txt\n")
    image = write_jpeg(tmp_path / "a.jpg")
    label = tmp_path / "a.txt"
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    images = [str(image)]

    def key() -> str:
        stamps = stat_many(images, ctime=True)
        return resultcache.fingerprint(options={}, files=[src], images=images, stamps=stamps)

    lst = os.stat(label)
    labels = ([str(label)], *stat_many([str(label)], ctime=True))
    findings = [finding("label-fields", "4 fields", path=str(label), line=1)]
    summary = {"images": 1, "boxes": 0}
    before = key()
    resultcache.store(src, before, labels, findings, summary)
    assert resultcache.load(src, before) == (findings, summary)
    time.sleep(0.05)  # past the file system's timestamp tick
    # the label: other boxes, same size, mtime set back -- only the ctime moved
    label.write_text("0 0.4 0.5 0.2 0.2\n")
    _set_back(label, lst)
    assert os.stat(label).st_size == lst.st_size and os.stat(label).st_mtime_ns == lst.st_mtime_ns
    assert resultcache.load(src, before) is None
    # an image edited the same way changes the fingerprint
    ist = os.stat(image)
    data = bytearray(image.read_bytes())
    data[-3] ^= 0xFF
    image.write_bytes(bytes(data))
    _set_back(image, ist)
    assert os.stat(image).st_mtime_ns == ist.st_mtime_ns and key() != before
    # and so does the .data file (a small file: size, mtime and ctime)
    resultcache.store(src, key(), labels, findings, summary)
    stored, dst = key(), os.stat(src)
    time.sleep(0.05)
    Path(src).write_text("classes = 2\ntrain = train.txt\n")
    _set_back(Path(src), dst)
    assert key() != stored
