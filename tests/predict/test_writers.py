from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.predict.writers import VideoWriter, save_image


def test_save_image_atomic_and_suffix(tmp_path: Path) -> None:
    im = Image.new("RGB", (8, 6), (10, 200, 30))
    save_image(tmp_path / "out" / "a.png", im)
    assert np.asarray(Image.open(tmp_path / "out" / "a.png"))[0, 0].tolist() == [10, 200, 30]
    from detforge.errors import DetforgeError

    with pytest.raises(DetforgeError, match="suffix"):
        save_image(tmp_path / "a.gifx", im)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_video_writer_roundtrip(tmp_path: Path) -> None:
    import av

    out = tmp_path / "v" / "annotated.mp4"
    with VideoWriter(out, fps=12) as vw:
        for i in range(7):
            vw.write(np.full((33, 41, 3), i * 30, dtype=np.uint8))  # odd size -> padded
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    assert len(frames) == 7 and frames[0].shape == (34, 42, 3)
    assert abs(float(frames[3][:33, :41].mean()) - 90) < 6
    assert [p.name for p in out.parent.iterdir()] == ["annotated.mp4"]
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "bad.mp4") as vw:
        vw.write(np.zeros((8, 8, 3), dtype=np.uint8))
        raise RuntimeError("interrupted")
    assert list(tmp_path.glob("*bad*")) == []
