"""The NaN policy: skip, roll back with a lower LR, stop with a diagnosis."""

from __future__ import annotations

from detforge.train.nan_guard import NanGuard


def test_skip_then_rollback_then_stop() -> None:
    g = NanGuard(skip_limit=2, max_rollbacks=1, lr_factor=0.5)
    assert g.observe(True, 0, ["a.jpg"]) == "ok"
    assert g.observe(False, 1, ["a.jpg", "b.jpg"]) == "skip"
    assert g.observe(True, 1, ["c.jpg"]) == "ok"  # a good step resets the streak
    assert g.observe(False, 2, ["a.jpg"]) == "skip"
    assert g.observe(False, 2, ["d.jpg"]) == "rollback"
    assert g.lr_scale == 0.5
    assert g.observe(False, 2, ["a.jpg"]) == "skip"
    assert g.observe(False, 2, ["e.jpg"]) == "stop"
    assert g.total_bad == 5 and g.first_bad_step == 1


def test_diagnosis_blames_repeated_images_on_the_data() -> None:
    g = NanGuard(skip_limit=1, max_rollbacks=0)
    for _ in range(3):
        g.observe(False, 0, ["bad.jpg", "x.jpg"])
    text = g.diagnosis(0.01)
    assert "DATA" in text and "bad.jpg" in text and "detforge check" in text


def test_diagnosis_blames_the_lr_after_many_good_steps() -> None:
    g = NanGuard(skip_limit=1, max_rollbacks=0)
    for s in range(50):
        g.observe(True, s, [f"{s}.jpg"])
    g.observe(False, 50, ["u.jpg"])
    g.observe(False, 50, ["v.jpg"])
    text = g.diagnosis(0.001)
    assert "LEARNING RATE" in text and "--lr" in text
